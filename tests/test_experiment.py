"""Experiment: notebook parameters -> model, test set, corpus, method; toy and real paths alike."""
import numpy as np
import pytest
import torch

from lcmc_core import toyclip
from lcmc_core.experiment import Experiment, _label_sentence
from lcmc_core.labels import get_label_set

from fixtures_datasets import make_voc2007


def smoke_params(tmp_path, **kw):
    params = dict(profile="smoke", dataset="emoji-voc", toy_size="smoke", corpus_size=200, n_test=64,
                  out_dir=str(tmp_path), method_options={"n_boot": 0, "prompt_copies": 1})
    params.update(kw)
    return params


def test_unknown_parameters_are_named():
    with pytest.raises(TypeError, match="llm_api_key"):
        Experiment.from_parameters(llm_api_key="sk-should-never-be-a-parameter")


def test_toy_experiment_runs_the_comparison_and_writes_its_corpus(tmp_path, smoke_clip):
    exp = Experiment.from_parameters(**smoke_params(tmp_path))
    assert exp.is_toy and exp.clip.name == "lcmc-toy-rn" and len(exp.test_set) == 64
    assert exp.corpus_path.parent == tmp_path / "corpus" and not exp.corpus_complete()
    res = exp.comparison(progress=False, classifier_options=dict(epochs=2, warmup_epochs=1, batch_size=64))
    assert exp.corpus_complete()
    assert res.table.loc["CoMC (full)", "mAP"] > 0
    lines = exp.corpus_path.read_text().splitlines()
    assert 150 <= len(lines) <= 200  # texts that name no class are rejected, not kept


def test_paired_embeddings_toy_are_held_out_captions(tmp_path, smoke_clip):
    exp = Experiment.from_parameters(**smoke_params(tmp_path))
    img, txt, captions = exp.paired_embeddings(n=16)
    assert img.shape == txt.shape == (16, 128) and len(captions) == 16
    assert torch.allclose(img.norm(dim=1), torch.ones(16), atol=1e-5)


def test_real_dataset_path_with_a_checkpoint_file(tmp_path, smoke_clip, smoke_spec):
    fx = make_voc2007(tmp_path / "voc")
    ckpt = toyclip.checkpoint_path(smoke_spec)
    exp = Experiment.from_parameters(dataset="voc2007", data_root=str(fx.root), clip_model="lcmc-toy-rn",
                                     clip_pretrained=str(ckpt), out_dir=str(tmp_path / "out"), n_test=3)
    assert not exp.is_toy
    assert len(exp.test_set) == 3 and exp.test_set.image_paths is not None
    img, txt, captions = exp.paired_embeddings(n=10)
    assert img.shape == (3, 128) and txt.shape == (3, 128)
    assert all(c.startswith("a photo") for c in captions)


def test_label_sentence_names_every_positive_label_once():
    ls = get_label_set("voc2007")
    row = np.zeros(20, dtype=np.int8)
    row[[ls.index("dog"), ls.index("person"), ls.index("diningtable")]] = 1
    row[ls.index("cat")] = -1  # difficult labels are not named
    s = _label_sentence(ls, row)
    assert ls.extract(s) == {ls.index("dog"), ls.index("person"), ls.index("diningtable")}
    assert _label_sentence(ls, np.zeros(20, dtype=np.int8)) == "a photo."


def test_llm_options_come_from_llm_parameters_only():
    exp = Experiment(corpus_generator="openai", llm_model="gpt-x", llm_base_url="http://127.0.0.1:9/v1",
                     llm_api_key_env="MY_KEY_VAR")
    opts = exp.llm_options()
    assert opts["model"] == "gpt-x" and opts["api_key_env"] == "MY_KEY_VAR"
    assert opts["base_url"] == "http://127.0.0.1:9/v1" and "price_prompt_per_1k" not in opts
    assert Experiment().llm_options() == {}  # the template generator takes none
