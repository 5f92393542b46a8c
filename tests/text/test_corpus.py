"""The text corpus: request plan, prompts, template generator, prompt augmentation, JSONL storage, statistics."""
import gzip
import json
from collections import Counter

import numpy as np
import pytest

from lcmc_core.errors import CorpusError
from lcmc_core.text.corpus import (
    Corpus,
    build_corpus,
    completed_indices,
    cooccurrence_counts,
    corpus_from_records,
    extract_labels,
    label_statistics,
    labels_per_text,
    make_record,
    make_requests,
    paper_prompt,
    prompt_augmentation,
    read_corpus,
    sample_label_sets,
    write_corpus,
)
from lcmc_core.text.generators import Request, Response, SentenceGenerator, TemplateGenerator
from lcmc_core.text.generators import make_generator as get_generator
from lcmc_core.text.label_sets import get_label_set
from lcmc_core.text.prompts import OWN_TEMPLATES as PROMPT_TEMPLATES

SETS = ["voc2007", "emoji-voc", "coco2014", "nuswide"]


# --- the plan --------------------------------------------------------------------------------

def test_plan_is_deterministic_and_resumable():
    a = sample_label_sets("coco2014", 50, seed=3)
    assert a == sample_label_sets("coco2014", 50, seed=3)
    assert a != sample_label_sets("coco2014", 50, seed=4)
    assert sample_label_sets("coco2014", 20, seed=3, start=30) == a[30:]
    assert sample_label_sets("coco2014", 0, seed=3) == []


def test_plan_k_and_label_distribution():
    C = 20
    plan = sample_label_sets("voc2007", 5000, seed=0)
    ks = Counter(len(p) for p in plan)
    assert set(ks) == {1, 2, 3, 4, 5}
    for k in range(1, 6):
        assert abs(ks[k] / 5000 - 0.2) < 0.03, ks
    for p in plan:
        assert len(set(p)) == len(p) and all(0 <= i < C for i in p)
        assert all(isinstance(i, int) for i in p)
    freq = np.bincount([i for p in plan for i in p], minlength=C) / sum(len(p) for p in plan)
    assert np.abs(freq - 1 / C).max() < 0.015
    assert {len(p) for p in sample_label_sets("voc2007", 200, seed=1, k_range=(2, 2))} == {2}
    assert max(len(p) for p in sample_label_sets("voc2007", 200, seed=1, k_range=(19, 40))) == 20


@pytest.mark.parametrize("bad", [(0, 3), (3, 2), "ab", (1,), (21, 25)])
def test_plan_rejects_bad_k_range(bad):
    with pytest.raises(ValueError, match="k_range"):
        sample_label_sets("voc2007", 5, seed=0, k_range=bad)


def test_matrix_prior_weights_pairs():
    C = 20
    W = np.ones((C, C))
    W[0, 1] = W[1, 0] = 1000.0
    prior_plan = sample_label_sets("voc2007", 3000, seed=0, k_range=(2, 2), prior=W)
    uniform_plan = sample_label_sets("voc2007", 3000, seed=0, k_range=(2, 2))

    def pair_count(plan):
        return sum(set(p) == {0, 1} for p in plan)
    assert pair_count(prior_plan) > 10 * max(pair_count(uniform_plan), 1)
    after0 = [p[1] for p in prior_plan if p[0] == 0]
    assert sum(j == 1 for j in after0) / len(after0) > 0.9
    # The diagonal weights the first label.
    D = np.zeros((C, C))
    D[5, 5] = 1.0
    assert {p[0] for p in sample_label_sets("voc2007", 50, seed=0, k_range=(1, 1), prior=D)} == {5}
    # Zero co-occurrence still gives k distinct labels (uniform fallback).
    assert all(len(set(p)) == 3 for p in sample_label_sets("voc2007", 50, seed=0, k_range=(3, 3), prior=D))


def test_callable_prior_and_errors():
    def prior(chosen):
        w = np.zeros(20)
        w[3 if not chosen else 4] = 1.0
        return w
    plan = sample_label_sets("voc2007", 30, seed=0, k_range=(2, 2), prior=prior)
    assert set(plan) == {(3, 4)}
    with pytest.raises(ValueError, match="prior must be a 20 x 20"):
        sample_label_sets("voc2007", 3, seed=0, prior=np.ones((3, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        sample_label_sets("voc2007", 3, seed=0, prior=-np.ones((20, 20)))
    with pytest.raises(ValueError, match="invalid weights"):
        sample_label_sets("voc2007", 3, seed=0, prior=lambda chosen: [1.0, 2.0])


def test_paper_prompt_and_requests():
    assert paper_prompt(["dog", "potted plant"]) == (
        "Please make a brief sentence to describe a photo that contains dog, potted plant.")
    with pytest.raises(ValueError):
        paper_prompt([])
    reqs = make_requests("voc2007", 5, seed=2, start=10)
    voc = get_label_set("voc2007")
    plan = sample_label_sets("voc2007", 5, seed=2, start=10)
    assert [r.index for r in reqs] == list(range(10, 15))
    for r, ids in zip(reqs, plan):
        assert r.label_ids == ids
        assert r.label_names == tuple(voc.prompt_names[i] for i in ids)
        assert r.prompt == paper_prompt(r.label_names)


# --- the template generator ------------------------------------------------------------------

@pytest.mark.parametrize("name", SETS)
def test_template_sentences_name_exactly_their_labels(name):
    ls = get_label_set(name)
    reqs = make_requests(name, 400, seed=7)
    gen = TemplateGenerator(name, seed=1)
    out = list(gen.generate(reqs))
    assert [r.index for r in out] == [r.index for r in reqs]
    fallbacks = 0
    for req, resp in zip(reqs, out):
        assert resp.source == "template"
        assert ls.extract(resp.text) == set(req.label_ids), (req.label_names, resp.text)
        fallbacks += resp.text == gen.fallback(req.label_ids)
    assert fallbacks <= 4
    assert len({r.text for r in out}) > 390


def test_template_every_class_alone_and_fallback():
    for name in SETS:
        ls = get_label_set(name)
        gen = TemplateGenerator(ls, seed=0)
        for i in range(len(ls)):
            assert ls.extract(gen.sentence(i, [i])) == {i}
            assert ls.extract(gen.fallback([i])) == {i}
        ids = list(range(0, len(ls), 4))[:5]
        assert ls.extract(gen.fallback(ids)) == set(ids)


def test_template_determinism_and_variety():
    reqs = make_requests("coco2014", 60, seed=0)
    a = [r.text for r in TemplateGenerator("coco2014", seed=5).generate(reqs)]
    b = [r.text for r in TemplateGenerator("coco2014", seed=5).generate(reqs)]
    c = [r.text for r in TemplateGenerator("coco2014", seed=6).generate(reqs)]
    assert a == b and a != c
    # A sentence depends only on (seed, index, labels), not on the batch it came in.
    alone = next(TemplateGenerator("coco2014", seed=5).generate([reqs[17]])).text
    assert alone == a[17]
    many = [r.text for r in TemplateGenerator("voc2007", 0).generate(make_requests("voc2007", 500, 1))]
    openings = {" ".join(t.split()[:2]) for t in many}
    assert len(openings) > 60
    assert any(t[0].isdigit() or t.split()[0] in {"Two", "Three", "Four", "Five"} or
               " two " in t or " three " in t for t in many)
    assert any(" an " in t for t in many) and any(" the " in t.lower() for t in many)
    with pytest.raises(ValueError, match="outside"):
        TemplateGenerator("voc2007").sentence(0, [25])


# --- prompt augmentation ---------------------------------------------------------------------

def test_prompt_templates_are_ours_and_clean():
    assert len(PROMPT_TEMPLATES) == 80 == len(set(PROMPT_TEMPLATES))
    for t in PROMPT_TEMPLATES:
        text = t.format(a="a xyzzy", c="xyzzy", p="xyzzies")
        for name in SETS:
            assert not get_label_set(name).extract(text), (name, t)


@pytest.mark.parametrize("name", SETS)
def test_prompt_augmentation(name):
    ls = get_label_set(name)
    recs = prompt_augmentation(name, copies=9)
    per_class = 9 + len(PROMPT_TEMPLATES)
    assert len(recs) == len(ls) * per_class
    for i in range(len(ls)):
        block = recs[i * per_class:(i + 1) * per_class]
        assert len({r["text"] for r in block[:9]}) == 1
        for r in block:
            assert r["label_ids"] == [i] and r["labels"] == [ls.classnames[i]]
            assert r["source"] == "prompt"
            assert ls.extract(r["text"]) == {i}, r["text"]
    texts = [r["text"] for r in recs]
    if name in ("voc2007", "coco2014"):
        assert "a photo of an airplane." in texts and "a photo of a dog." in texts
    assert len(prompt_augmentation(name, copies=0, templates=["{a}", "the {c}"])) == 2 * len(ls)


def test_prompt_augmentation_errors():
    with pytest.raises(ValueError, match="copies"):
        prompt_augmentation("voc2007", copies=-1)
    with pytest.raises(ValueError, match="placeholders"):
        prompt_augmentation("voc2007", templates=["a photo of {thing}."])


# --- build_corpus and generators -------------------------------------------------------------

def test_build_corpus_template():
    recs = build_corpus("voc2007", 100, seed=0)
    assert [r["index"] for r in recs] == list(range(100))
    voc = get_label_set("voc2007")
    for r in recs:
        assert r["label_ids"] == sorted(extract_labels(r["text"], "voc2007"))
        assert sorted(r["requested"]) == sorted(r["labels"])
        assert r["labels"] == [voc.classnames[i] for i in r["label_ids"]]
        assert r["source"] == "template"
    assert build_corpus("voc2007", 100, seed=0) == recs
    assert build_corpus("voc2007", 10, seed=0, start=90) == recs[90:]


class _FakeLLM(SentenceGenerator):
    """Answers out of order, fails one request, and writes what it likes."""

    source = "fake"

    def generate(self, requests):
        requests = list(requests)
        for req in reversed(requests):
            if req.index == 2:
                continue
            if req.index == 3:
                yield Response(req.index, "A quiet empty landscape.", self.source)
            elif req.index == 4:
                yield Response(req.index, f"  A {req.label_names[0]} and a hot dog.  ", self.source)
            else:
                yield Response(req.index, f"A photo of {' and '.join(req.label_names)}.", self.source)


def test_build_corpus_with_llm_like_generator():
    recs = build_corpus("voc2007", 6, seed=1, generator=_FakeLLM(), k_range=(1, 1))
    assert [r["index"] for r in recs] == [0, 1, 4, 5]  # 2 failed, 3 names no class
    r4 = recs[2]
    assert r4["text"] == r4["text"].strip() and r4["source"] == "fake"
    assert r4["labels"] == r4["requested"]  # "hot dog" is not a VOC dog
    kept = build_corpus("voc2007", 6, seed=1, generator=_FakeLLM(), k_range=(1, 1), drop_unlabeled=False)
    assert [r["index"] for r in kept] == [0, 1, 3, 4, 5] and kept[2]["labels"] == []

    class Wrong(SentenceGenerator):
        def generate(self, requests):
            yield Response(999, "a dog")
    with pytest.raises(ValueError, match="unknown request index 999"):
        build_corpus("voc2007", 3, seed=0, generator=Wrong())
    with pytest.raises(ValueError, match="unknown generator 'gpt'"):
        get_generator("gpt", "voc2007")
    with pytest.raises(TypeError, match="generate"):
        get_generator(object(), "voc2007")


# --- storage ---------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_jsonl_round_trip(tmp_path, suffix):
    recs = build_corpus("coco2014", 40, seed=0) + prompt_augmentation("coco2014", copies=1)[:200]
    recs.append(make_record("Ein Hund, ein Café — und Umlaute: äöü.", [17], "coco2014", "openai"))
    path = tmp_path / f"sub/corpus{suffix}"
    assert write_corpus(path, recs) == len(recs)
    corpus = read_corpus(path, "coco2014")
    assert isinstance(corpus, Corpus) and len(corpus) == len(recs)
    assert corpus.texts == [r["text"] for r in recs]
    assert corpus.sources == [r["source"] for r in recs]
    assert corpus.targets.dtype == np.int8 and corpus.targets.shape == (len(recs), 80)
    for row, r in zip(corpus.targets, recs):
        assert list(np.flatnonzero(row)) == r["label_ids"]
    assert corpus.requested[0] == recs[0]["requested"] and corpus.requested[-1] is None
    assert completed_indices(path) == set(range(40))
    again = corpus_from_records(corpus.records(), "coco2014")
    assert again.texts == corpus.texts and np.array_equal(again.targets, corpus.targets)
    sub = corpus.select(corpus.targets[:, 0] == 1)
    assert len(sub) == int(corpus.targets[:, 0].sum())
    if suffix == ".jsonl.gz":
        with gzip.open(path, "rt", encoding="utf-8") as f:
            assert json.loads(f.readline())["text"] == recs[0]["text"]
    more = [make_record(f"A photo of {k} dogs.", [17], "coco2014", "hand") for k in ("two", "three", "four")]
    write_corpus(path, more, append=True)
    assert len(read_corpus(path, "coco2014")) == len(recs) + 3
    write_corpus(path, recs[:1], append=True)             # the same record twice is an error
    with pytest.raises(CorpusError, match=rf"corpus{suffix}:{len(recs) + 4}: repeats line 1 exactly"):
        read_corpus(path, "coco2014")


def test_read_corpus_names_file_and_line_of_every_malformed_record(tmp_path):
    good = json.dumps(make_record("A dog on a sofa.", [17], "coco2014", "hand", index=0))
    cases = {
        "empty text": ([good, json.dumps({"text": "  ", "labels": []})], r"c.jsonl:2: 'text' is empty"),
        "repeated index": ([good, json.dumps(make_record("A cat.", [16], "coco2014", "hand", index=0))],
                           r"c.jsonl:2: plan index 0 repeats .*c.jsonl:1"),
        "repeated line": ([good, "", good], r"c.jsonl:3: repeats line 1 exactly"),
        "bad JSON": ([good, '{"text": "x", '], r"c.jsonl:2: invalid JSON"),
        "unknown label": ([json.dumps({"text": "A unicorn.", "labels": ["unicorn"]})], r"c.jsonl:1: unknown labels"),
    }
    for _case, (lines, match) in cases.items():
        path = _write_lines(tmp_path / "c.jsonl", lines)
        with pytest.raises(CorpusError, match=match):
            read_corpus(path, "coco2014")
    path = tmp_path / "c.jsonl"
    path.write_bytes(good.encode() + b"\n" + b'{"text": "caf\xe9", "labels": []}\n')
    with pytest.raises(CorpusError, match=r"c.jsonl:2: not valid UTF-8 \(byte 14 of the line\)"):
        read_corpus(path, "coco2014")
    with pytest.raises(FileNotFoundError, match="corpus file .*absent.jsonl does not exist"):
        read_corpus(tmp_path / "absent.jsonl", "coco2014")


def _write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_corpus_errors(tmp_path):
    good = json.dumps({"text": "a dog", "labels": ["dog"], "label_ids": [11], "source": "x"})
    p = _write_lines(tmp_path / "bad_json.jsonl", [good, "{not json"])
    with pytest.raises(ValueError, match=r"bad_json\.jsonl:2: invalid JSON"):
        read_corpus(p, "voc2007")
    p = _write_lines(tmp_path / "unknown.jsonl", [good, "", json.dumps({"text": "x", "labels": ["unicorn"]})])
    with pytest.raises(ValueError, match=r"unknown\.jsonl:3: unknown labels \['unicorn'\] for label set 'voc2007'"):
        read_corpus(p, "voc2007")
    p = _write_lines(tmp_path / "ids.jsonl", [json.dumps({"text": "x", "labels": ["dog"], "label_ids": [3]})])
    with pytest.raises(ValueError, match=r"ids\.jsonl:1: 'label_ids'"):
        read_corpus(p, "voc2007")
    p = _write_lines(tmp_path / "notext.jsonl", [json.dumps({"labels": ["dog"]})])
    with pytest.raises(ValueError, match=r"notext\.jsonl:1: 'text'"):
        read_corpus(p, "voc2007")
    p = _write_lines(tmp_path / "list.jsonl", ["[1, 2]"])
    with pytest.raises(ValueError, match=r"list\.jsonl:1: expected a JSON object"):
        read_corpus(p, "voc2007")
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_corpus(tmp_path / "missing.jsonl", "voc2007")
    assert completed_indices(tmp_path / "missing.jsonl") == set()
    with pytest.raises(ValueError, match="record 1"):
        write_corpus(tmp_path / "w.jsonl", [{"labels": []}])
    with pytest.raises(ValueError, match="record 2: unknown labels"):
        corpus_from_records([json.loads(good), {"text": "a", "labels": ["cat", "lion"]}], "voc2007")


# --- statistics ------------------------------------------------------------------------------

def test_statistics():
    recs = [make_record("a dog and a cat", [7, 11], "voc2007", "t"),
            make_record("a dog", [11], "voc2007", "t"),
            make_record("a landscape", [], "voc2007", "t")]
    corpus = corpus_from_records(recs, "voc2007")
    stats = label_statistics(corpus)
    assert list(stats.index[:2]) == ["aeroplane", "bicycle"] and len(stats) == 20
    assert stats.loc["dog", "count"] == 2 and stats.loc["cat", "frequency"] == pytest.approx(1 / 3)
    hist = labels_per_text(corpus)
    assert hist.to_dict() == {0: 1, 1: 1, 2: 1}
    co = cooccurrence_counts(corpus)
    assert co.shape == (20, 20) and co.loc["dog", "cat"] == co.loc["cat", "dog"] == 1
    assert co.loc["dog", "dog"] == 2 and (np.diag(co.to_numpy()) == stats["count"].to_numpy()).all()
    plan = sample_label_sets("voc2007", 20, seed=0, k_range=(2, 2), prior=co.to_numpy())
    assert all(set(p) == {7, 11} for p in plan)


def test_extract_labels_wrapper():
    assert extract_labels("Two dogs and a catalogue", "voc2007") == {11}
    assert extract_labels("a teddy bear", get_label_set("coco2014")) == {get_label_set("coco2014").index("teddy bear")}
    assert isinstance(Request(0, (1,), ("bicycle",), "p"), Request)


def test_cooccurrence_ratio_hand_computed():
    from lcmc_core.text.corpus import cooccurrence_ratio
    # 4 items, classes a b c d: counts 3, 3, 1, 0
    t = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, -1]])
    r = cooccurrence_ratio(t, ["a", "b", "c", "d"])
    assert r.loc["a", "b"] == pytest.approx(np.log2(2 / (3 * 3 / 4)))   # observed 2, expected 2.25
    assert r.loc["a", "c"] == pytest.approx(np.log2(1 / (3 * 1 / 4)))   # observed 1, expected 0.75
    assert r.loc["b", "c"] == -np.inf                                   # never together
    assert np.isnan(r.loc["a", "d"]) and np.isnan(r.loc["a", "a"])      # class never seen; diagonal
    assert np.allclose(r.values, r.values.T, equal_nan=True)
    raw = cooccurrence_ratio(t, ["a", "b", "c", "d"], log2=False)
    assert raw.loc["a", "c"] == pytest.approx(4 / 3) and raw.loc["b", "c"] == 0
    with pytest.raises(ValueError, match="N x 3"):
        cooccurrence_ratio(t, ["a", "b", "c"])


@pytest.mark.parametrize("index", [-1, "3", 2.0, True])
def test_an_index_that_is_not_a_plan_position_names_file_and_line(tmp_path, index):
    path = tmp_path / "c.jsonl"
    rec = {"text": "A dog.", "labels": ["dog"], "source": "template", "index": index}
    path.write_text(json.dumps(rec) + "\n")
    with pytest.raises(CorpusError, match=r"c\.jsonl:1: 'index' \(the plan position\) must be an integer >= 0"):
        read_corpus(path, "voc2007")
