"""Experiment: a run's parameters -> model, test set, corpus, comparison; toy and real paths alike."""
import numpy as np
import pytest
import torch

from lcmc_core.errors import ConfigError
from lcmc_core.experiments.experiment import Experiment, label_sentence
from lcmc_core.experiments.rows import Row
from lcmc_core.images import toyclip
from lcmc_core.text.label_sets import get_label_set

from fixtures_datasets import make_voc2007


def smoke(tmp_path, **tree):
    base = dict(toy_size="smoke", corpus_size=200, n_test=64, evaluation={"n_boot": 0},
                comparison={"prompt_copies": 1}, method={"classifier": dict(epochs=2, warmup_epochs=1, batch_size=64)})
    base.update(tree)
    return Experiment(base, out_dir=tmp_path, profile="smoke")


def test_unknown_and_secret_parameters_are_refused():
    with pytest.raises(ConfigError, match="looks like a secret"):
        Experiment({"llm_api_key": "sk-should-never-be-a-parameter"})
    with pytest.raises(ConfigError, match="unknown parameter 'corpus_sise'"):
        Experiment({"corpus_sise": 3})


def test_from_notebook_with_empty_params_is_the_toy_profile():
    exp = Experiment.from_notebook("toy", "", {})
    assert exp.is_toy and exp.params.toy_size == "toy" and exp.note.startswith("Toy world")
    assert "profile 'toy': emoji-voc" in exp.describe()
    assert exp.params.n_seeds == 5 and exp.params.n_test == 2000       # the committed results' parameters
    assert Experiment.from_notebook("smoke", "", {}).params.toy_size == "smoke"


def test_toy_experiment_runs_the_comparison_and_writes_its_corpus(tmp_path, smoke_clip):
    exp = smoke(tmp_path, comparison={"prompt_copies": 1, "sparc_prompts_per_class": 3})   # 64 images: few prompts
    assert exp.is_toy and exp.clip().name == "lcmc-toy-rn" and len(exp.test_set()) == 64
    assert exp.clip() is exp.clip()  # built once
    assert exp.corpus_path().parent == tmp_path / "corpus" and not exp.corpus_complete()
    res = exp.comparison(progress=False)
    assert exp.corpus_complete()
    assert res.table.loc[Row.COMC, "mAP"] > 0 and Row.SPARC in res.table.index      # SPARC from the toy world
    lines = exp.corpus_path().read_text().splitlines()
    assert 150 <= len(lines) <= 200  # texts that name no class are rejected, not kept


def test_paired_embeddings_toy_are_held_out_captions(tmp_path, smoke_clip):
    img, txt, captions = smoke(tmp_path).paired_embeddings(n=16)
    assert img.shape == txt.shape == (16, 128) and len(captions) == 16
    assert torch.allclose(img.norm(dim=1), torch.ones(16), atol=1e-5)


def test_pair_count_toy_uses_heldout_size_real_caps_at_n_test(tmp_path):
    assert Experiment({"toy_size": "smoke"}).pair_count() == toyclip.SIZES["smoke"]["n_heldout"]
    assert Experiment({"toy_size": "toy"}).pair_count() == toyclip.SIZES["toy"]["n_heldout"]
    real = {"dataset": "voc2007", "data_root": str(tmp_path)}
    assert Experiment(real).pair_count() == 1000
    assert Experiment({**real, "n_test": 300}).pair_count() == 300
    assert Experiment({**real, "n_test": 5000}).pair_count(default=800) == 800


def test_with_variant_replaces_only_the_variant():
    exp = Experiment({"seed": 3})
    other = exp.with_variant("small-gap")
    assert other.params.toy_variant == "small-gap" and other.params.seed == 3
    assert exp.params.toy_variant == "clip-like-gap"
    with pytest.raises(ValueError, match="toy CLIP variant|toy_variant"):
        exp.with_variant("nope")


def test_real_dataset_path_with_a_checkpoint_file(tmp_path, smoke_clip, smoke_spec):
    fx = make_voc2007(tmp_path / "voc")
    ckpt = toyclip.checkpoint_path(smoke_spec)
    exp = Experiment({"dataset": "voc2007", "data_root": str(fx.root), "clip_model": "lcmc-toy-rn",
                      "clip_pretrained": str(ckpt), "n_test": 20 if len(fx.image_ids) >= 20 else 0},
                     out_dir=tmp_path / "out")
    assert not exp.is_toy
    assert exp.test_set().image_paths is not None
    img, txt, captions = exp.paired_embeddings(n=10)
    assert img.shape[1] == 128 and txt.shape == img.shape
    assert all(c.startswith("a photo") for c in captions)


def test_label_sentence_names_every_positive_label_once():
    ls = get_label_set("voc2007")
    row = np.zeros(20, dtype=np.int8)
    row[[ls.index("dog"), ls.index("person"), ls.index("diningtable")]] = 1
    row[ls.index("cat")] = -1  # difficult labels are not named
    s = label_sentence(ls, row)
    assert ls.extract(s) == {ls.index("dog"), ls.index("person"), ls.index("diningtable")}
    assert label_sentence(ls, np.zeros(20, dtype=np.int8)) == "a photo."


def test_generator_options_come_from_the_llm_parameters_only():
    exp = Experiment({"corpus_generator": "openai", "llm": {"model": "gpt-x", "base_url": "http://127.0.0.1:9/v1",
                                                             "api_key_env": "MY_KEY_VAR"}})
    opts = exp.generator_options()
    assert opts["model"] == "gpt-x" and opts["api_key_env"] == "MY_KEY_VAR"
    assert opts["base_url"] == "http://127.0.0.1:9/v1" and "price_prompt_per_1k" not in opts
    assert Experiment().generator_options() == {}  # the template generator takes none


def test_the_corpus_file_name_carries_the_generator_settings():
    a = Experiment({"corpus_generator": "openai", "llm": {"model": "m1"}})
    b = Experiment({"corpus_generator": "openai", "llm": {"model": "m2"}})
    assert a.corpus_path() != b.corpus_path() and a.corpus_path().name.startswith("openai-")
    assert Experiment().corpus_path().name == "template-emoji-voc-n20000-seed0.jsonl"
    # Settings that only change how answers are fetched keep the same corpus (so a rerun resumes it).
    c = Experiment({"corpus_generator": "openai", "llm": {"model": "m1", "read_timeout_s": 5.0, "concurrency": 2,
                                                          "base_url": "http://127.0.0.1:8/v1"}})
    d = Experiment({"corpus_generator": "openai", "llm": {"model": "m1", "temperature": 0.3}})
    assert c.corpus_path() == a.corpus_path() and d.corpus_path() != a.corpus_path()


# --- the corpus: a user's file is an input; an empty corpus is an error -----------------------------
def _write_corpus(path, n):
    from lcmc_core.text import corpus
    corpus.write_corpus(path, [corpus.make_record(f"a dog and a cat, number {i}", [7, 11], "emoji-voc", "mine")
                               for i in range(n)])
    return path


def test_a_corpus_path_is_read_as_given_never_modified(tmp_path):
    path = _write_corpus(tmp_path / "mine.jsonl", 50)
    before = path.read_bytes()
    exp = Experiment({"corpus_path": str(path), "corpus_size": 0}, out_dir=tmp_path / "out")
    info = exp.prepare_corpus()
    assert info.sentences == 50 and info.origin.startswith("your corpus file") and info.summary is None
    with pytest.raises(ConfigError, match="nothing is generated"):
        exp.generate_corpus()
    corpus = exp.training_corpus()
    assert sum(s != "prompt" for s in corpus.sources) == 50
    assert path.read_bytes() == before and not (tmp_path / "out" / "corpus").exists()


def test_a_corpus_without_sentences_is_an_error_and_a_small_one_a_warning(tmp_path):
    from lcmc_core.errors import CorpusError
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(CorpusError, match="holds no sentence"):
        Experiment({"corpus_path": str(empty), "corpus_size": 0}, out_dir=tmp_path).prepare_corpus()
    with pytest.raises(CorpusError, match="holds no sentence"):
        Experiment({"corpus_path": str(empty), "corpus_size": 0}, out_dir=tmp_path).training_corpus()
    from lcmc_core.experiments.experiment import _check_corpus_size
    with pytest.warns(UserWarning, match="40 sentences, far fewer than the 100 requested"):
        _check_corpus_size(tmp_path / "c.jsonl", 40, 100)


def test_sparc_prompt_sources(tmp_path):
    from lcmc_core.text.compound import assign_compound_prompts
    toy = Experiment({"comparison": {"sparc_prompts_per_class": 2}})
    prompts, source = toy.sparc_prompts()
    assert source == "toy-world" and len(prompts) == 40
    assert all(len(get_label_set("emoji-voc").extract(p)) >= 2 for p in prompts)      # compound: 2-3 classes each
    assert Experiment({"comparison": {"sparc_prompts": "none"}}).sparc_prompts() is None
    real = Experiment({"dataset": "voc2007", "data_root": str(tmp_path), "comparison": {"sparc_prompts_per_class": 3}})
    prompts, source = real.sparc_prompts()
    assert source == "template" and len(prompts) == 60
    assert all(len(ids) >= 1 for ids in assign_compound_prompts("voc2007", prompts))
    with pytest.raises(ConfigError, match="'toy-world' exists only in the toy world"):
        Experiment({"dataset": "voc2007", "data_root": str(tmp_path),
                    "comparison": {"sparc_prompts": "toy-world"}}).sparc_prompts()
    with pytest.raises(ConfigError, match="needs an LLM"):
        Experiment({"dataset": "voc2007", "data_root": str(tmp_path), "comparison": {"sparc_prompts": "llm"}}).sparc_prompts()


def test_official_class_names_are_a_coco_option(tmp_path):
    exp = Experiment({"dataset": "coco2014", "data_root": str(tmp_path), "class_names": "official"})
    assert "motor bike" in exp.label_set.prompt_names and exp.label_set.classnames == get_label_set("coco2014").classnames
    with pytest.raises(ConfigError, match="class_names: 'official' exists for coco2014 only"):
        Experiment({"dataset": "voc2007", "data_root": str(tmp_path), "class_names": "official"})
    from lcmc_core.experiments.profiles import load_profile
    coco = load_profile("coco2014")
    assert coco.params["class_names"] == "official" and coco.params["comparison.released_checkpoint"] is True
