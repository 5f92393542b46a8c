"""SPARC's compound prompts (text.compound): matching by hand, the report, co-occurring groups, the LLM path and its file."""
import json
import warnings

import numpy as np
import pytest

from lcmc_core.errors import ConfigError, CorpusError, MissingFileError
from lcmc_core.text.compound import (
    FEW_PROMPTS,
    assign_compound_prompts,
    compound_report,
    compound_requests,
    conjunction_prompts,
    cooccurring_groups,
    generate_compound_prompts,
    parse_compound_answer,
    read_compound_prompts,
)
from lcmc_core.text.generators.base import Response, SentenceGenerator
from lcmc_core.text.label_sets import get_label_set

import chat_server
from chat_server import ChatServer

VOC = get_label_set("voc2007")
COCO = get_label_set("coco2014")


def _ids(ls, *names):
    return [ls.index(n) for n in names]


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------

def test_assignment_by_hand_plurals_irregular_plurals_and_joined_names():
    prompts = ["two dogs and three cats on a sofa",          # 0: plurals -> dog, cat, sofa
               "people walking their sheep",                # 1: irregular plural, invariant plural
               "a pottedplant next to a diningtable",       # 2: VOC's joined official names
               "a tvmonitor above two couches",             # 3: joined name; synonym plural (couch -> sofa)
               "a cat asleep in the sun",                   # 4: one class
               "a sunny afternoon"]                         # 5: no class
    cc = assign_compound_prompts("voc2007", prompts)
    expected = [[] for _ in range(20)]
    for p, names in [(0, ("dog", "cat", "sofa")), (1, ("person", "sheep")), (2, ("pottedplant", "diningtable")),
                     (3, ("tvmonitor", "sofa")), (4, ("cat",))]:
        for c in _ids(VOC, *names):
            expected[c].append(p)
    assert cc == expected
    assert cc[VOC.index("cat")] == [0, 4] and cc[VOC.index("sofa")] == [0, 3]


def test_multi_word_names_are_matched_before_their_parts():
    prompts = ["a teddy bear on a bed", "a bear and a teddy bear", "two mice and some knives on a dining table",
               "a hot dog next to a sleeping dog", "a hot dog on a plate"]
    cc = assign_compound_prompts(COCO, prompts)
    named = [sorted(COCO.names(c for c in range(80) if p in cc[c])) for p in range(len(prompts))]
    assert named == [["bed", "teddy bear"], ["bear", "teddy bear"], ["dining table", "knife", "mouse"],
                     ["dog", "hot dog"], ["hot dog"]]
    # in VOC, "hot dog" is food, not a dog (a stop phrase): the prompt names only the person
    assert assign_compound_prompts(VOC, ["a man eating a hot dog"])[VOC.index("dog")] == []


def test_prompts_naming_one_class_follow_the_official_rule_or_the_strict_one():
    prompts = ["a cat on a sofa", "a cat asleep", "a quiet street"]
    official = assign_compound_prompts("voc2007", prompts)          # min_classes=1: SPARC keeps it
    strict = assign_compound_prompts("voc2007", prompts, min_classes=2)
    assert official[VOC.index("cat")] == [0, 1] and strict[VOC.index("cat")] == [0]
    assert all(2 not in cols for cols in official)                  # naming no class: assigned nowhere
    with pytest.raises(ConfigError, match="min_classes"):
        assign_compound_prompts("voc2007", prompts, min_classes=3)


def test_names_only_matching_ignores_synonyms_as_the_official_code():
    prompts = ["a man riding a horse", "a person riding a pony", "a potted plant by a motorbike"]
    with_syn = assign_compound_prompts(VOC, prompts)
    names_only = assign_compound_prompts(VOC, prompts, synonyms=False)
    assert with_syn[VOC.index("person")] == [0, 1] and with_syn[VOC.index("horse")] == [0, 1]
    assert names_only[VOC.index("person")] == [1] and names_only[VOC.index("horse")] == [0]
    assert names_only[VOC.index("pottedplant")] == [2] and names_only[VOC.index("motorbike")] == [2]


def test_bad_prompt_lists_are_refused():
    with pytest.raises(ConfigError, match="prompts: expected a list of strings"):
        assign_compound_prompts("voc2007", "a dog and a cat")
    with pytest.raises(ConfigError, match=r"prompts\[1\]: expected a non-empty string"):
        assign_compound_prompts("voc2007", ["a dog and a cat", "  "])
    with pytest.raises(KeyError, match="unknown label set"):
        assign_compound_prompts("voc2012", ["a dog"])


def test_report_counts_prompts_per_class_and_lists_thin_classes():
    prompts = ["a dog and a cat"] * 3 + ["a dog and a sheep", "a dog", "a blue sky"]
    r = compound_report("voc2007", prompts)
    assert r.per_class["dog"] == 5 and r.per_class["cat"] == 3 and r.per_class["sheep"] == 1
    assert r.per_class["bus"] == 0 and len(r.per_class) == 20
    assert FEW_PROMPTS == 4 and "dog" not in r.few and r.few["cat"] == 3 and r.few["sheep"] == 1
    assert len(r.few) == 19
    assert r.naming_none == [5] and r.naming_one == [4]
    text = r.summary()
    assert "6 prompts for 20 classes of voc2007" in text and "cat (3)" in text and "1 name no class" in text
    strict = compound_report("voc2007", prompts, min_classes=2, threshold=2)
    assert strict.per_class["dog"] == 4 and set(strict.few) == set(VOC.classnames) - {"dog", "cat"}


# --------------------------------------------------------------------------------------------
# SPARC's groups of co-occurring training labels
# --------------------------------------------------------------------------------------------

# 10 images, 4 classes: {0,1} x4, {0,1,2}, {2} x2, {0}, {} x2; class 3 never appears.
# P(0) = .6, P(1) = .5, P(2) = .3; P(1|0) = 5/6, P(2|0) = 1/6, P(2|1) = 1/5, P(0|2) = 1/3.
LABELS = np.array([[1, 1, 0, 0]] * 4 + [[1, 1, 1, 0]] + [[0, 0, 1, 0]] * 2 + [[1, 0, 0, 0]] + [[0, 0, 0, 0]] * 2)


def test_cooccurring_groups_by_hand():
    # pairs with P(j|i) > .05 for i < j: (0,1), (0,2), (1,2); the best third class of (0,1) is 2
    # (P(2|0,1) = 1/5); (0,2) and (1,2) give the same set again; class 3 is alone.
    assert cooccurring_groups(LABELS) == [(0, 1), (0, 2), (1, 2), (0, 1, 2), (3,)]
    assert cooccurring_groups(LABELS, pair_threshold=0.5) == [(0, 1), (0, 1, 2), (3,)]
    assert cooccurring_groups(LABELS, pair_threshold=0.5, triplet_threshold=0.5) == [(0, 1), (2,), (3,)]
    # only P(j|i) with i < j is tested, as the official code: P(0|2) = 1/3 > .3 but P(2|0) = 1/6 is not
    assert (0, 2) not in cooccurring_groups(LABELS, pair_threshold=0.3)


def test_cooccurring_groups_refuse_non_binary_labels_and_conjunctions_read_like_sparc():
    with pytest.raises(ConfigError, match="0/1 entries"):
        cooccurring_groups(LABELS * 2 - 1)
    with pytest.raises(ConfigError, match="C >= 2"):
        cooccurring_groups(LABELS[:, :1])
    assert conjunction_prompts("coco2014", [(0, 1), (0, 2, 3), (5,)]) == ["person and bicycle",
                                                                         "person, car, and motorcycle"]
    with pytest.raises(ConfigError, match=r"groups\[0\] entry"):
        conjunction_prompts("voc2007", [(0, 20)])
    with pytest.raises(ConfigError, match=r"groups\[0\]: expected distinct"):
        conjunction_prompts("voc2007", [(1, 1)])


# --------------------------------------------------------------------------------------------
# Requests and answers
# --------------------------------------------------------------------------------------------

def test_requests_per_class_and_per_group():
    per_class = compound_requests("voc2007")
    assert [r.index for r in per_class] == list(range(20)) and per_class[15].label_ids == (15,)
    p = per_class[15].prompt
    assert "PASCAL VOC 2007" in p and "Write 8 short, natural sentences" in p and "a potted plant together with" in p
    assert "airplane, bicycle, bird" in p and p.endswith("with no numbering, quotes or other text.")
    groups = compound_requests("coco2014", [(0, 1), (0, 2, 3), (47,)], sentences=3, dataset="COCO")
    assert [r.label_names for r in groups] == [("person", "bicycle"), ("person", "car", "motorcycle"), ("apple",)]
    assert "contains a person, a car and a motorcycle. Every sentence must name all of them." in groups[1].prompt
    assert "on COCO," in groups[0].prompt and "Write 3 short" in groups[0].prompt
    assert "an apple together with one or two other objects" in groups[2].prompt
    with pytest.raises(ConfigError, match="sentences"):
        compound_requests("voc2007", sentences=0)


def test_parse_answer_strips_numbering_bullets_quotes_and_headings():
    answer = ('Here are 6 sentences:\n\n1. "A dog chasing a cat."\n2) A man  on a horse.\n'
              "- \u201cA bus on a street.\u201d\n* **A sheep and a cow.**\nSentence 5: A boat near a bird.\n"
              "(6) 'A train and a car.'\n   \n")
    assert parse_compound_answer(answer) == ["A dog chasing a cat.", "A man on a horse.", "A bus on a street.",
                                             "A sheep and a cow.", "A boat near a bird.", "A train and a car."]
    assert parse_compound_answer("") == [] and parse_compound_answer("A dog and a cat") == ["A dog and a cat"]
    with pytest.raises(TypeError):
        parse_compound_answer(None)


# --------------------------------------------------------------------------------------------
# The LLM path against the local chat-completions server
# --------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch):
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


def _answer_for(requests):
    """A fake LLM: a numbered, quoted list of two sentences naming the request's classes, behind a heading."""
    by_prompt = {r.prompt: r.label_names for r in requests}

    def answer(prompt):
        names = " and ".join(f"a {n}" for n in by_prompt[prompt])
        return f'Sure! Here are two sentences:\n\n1. "A photo of {names}."\n2. "{names.capitalize()} outdoors."\n'
    return answer


def _generator(server, **kw):
    from lcmc_core.text.generators.openai import OpenAIGenerator
    opts = dict(model="fake-model", base_url=server.url, api_key_env=None, max_tokens=400, timeout_s=5.0,
                backoff_base_s=0.01, backoff_max_s=0.02, concurrency=2, jitter_seed=0)
    opts.update(kw)
    return OpenAIGenerator(**opts)


def test_llm_answers_are_parsed_stored_and_resumed(tmp_path, monkeypatch):
    requests = compound_requests("voc2007", [(11, 7), (14, 12), (8, 17), (5,)])
    monkeypatch.setattr(chat_server, "sentence_for", _answer_for(requests))
    path = tmp_path / "compound.jsonl"
    # first run: the request for (person, horse) fails every attempt (500s)
    failing = requests[1].prompt
    with ChatServer(lambda prompt, attempt: "500" if prompt == failing else None) as server:
        first = generate_compound_prompts(path, "voc2007", _generator(server, max_attempts=2), requests)
    assert first.answered_before == 0 and first.answered_now == 3 and first.missing == [1] and not first.complete
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["index"] for r in records) == [0, 2, 3]
    rec = next(r for r in records if r["index"] == 0)
    assert rec["prompts"] == ["A photo of a dog and a cat.", "A dog and a cat outdoors."]
    assert rec["labels"] == ["dog", "cat"] and rec["label_ids"] == [11, 7] and rec["request"] == requests[0].prompt
    assert rec["source"] == "openai:fake-model" and rec["finish_reason"] == "stop" and rec["text"].startswith("Sure!")
    # second run: only the missing request is asked
    with ChatServer() as server:
        second = generate_compound_prompts(path, "voc2007", _generator(server), requests)
        assert set(server.attempts) == {failing}
    assert second.answered_before == 3 and second.answered_now == 1 and second.complete
    prompts = read_compound_prompts(path)
    assert prompts[:2] == ["A photo of a dog and a cat.", "A dog and a cat outdoors."]
    assert prompts[2:4] == ["A photo of a person and a horse.", "A person and a horse outdoors."]
    assert len(prompts) == 8 and second.prompts == 8
    cc = assign_compound_prompts("voc2007", prompts)
    assert cc[VOC.index("person")] == [2, 3] and cc[VOC.index("bus")] == [6, 7]
    # a third run asks nothing
    with ChatServer() as server:
        third = generate_compound_prompts(path, "voc2007", _generator(server), requests)
        assert server.requests == 0
    assert third.answered_now == 0 and third.complete


def test_file_written_for_other_requests_is_refused(tmp_path, monkeypatch):
    requests = compound_requests("voc2007", [(11, 7)])
    monkeypatch.setattr(chat_server, "sentence_for", _answer_for(requests))
    path = tmp_path / "c.jsonl"
    with ChatServer() as server:
        generate_compound_prompts(path, "voc2007", _generator(server), requests)
        other = compound_requests("voc2007", [(11, 7)], sentences=5)
        with pytest.raises(CorpusError, match=r"c\.jsonl:1: record 0 was asked with another request"):
            generate_compound_prompts(path, "voc2007", _generator(server), other)


def test_generator_with_too_few_tokens_is_refused_before_any_request(tmp_path):
    with ChatServer() as server:
        with pytest.raises(ConfigError, match="max_tokens=40 cannot hold a list of sentences"):
            generate_compound_prompts(tmp_path / "c.jsonl", "voc2007", _generator(server, max_tokens=40))
        assert server.requests == 0
    assert not (tmp_path / "c.jsonl").exists()


class _ScriptedGenerator(SentenceGenerator):
    """Answers from a script: (index -> text, finish_reason); raises after ``fail_after`` answers."""

    source = "scripted"

    def __init__(self, answers, fail_after=None):
        self.answers, self.fail_after = answers, fail_after
        self.asked = []

    def generate(self, requests):
        for n, req in enumerate(requests):
            self.asked.append(req.index)
            if self.fail_after is not None and n == self.fail_after:
                raise KeyboardInterrupt
            text, finish = self.answers[req.index]
            yield Response(req.index, text, self.source, {"finish_reason": finish})


def test_a_cut_answer_loses_its_last_line_and_an_empty_one_is_asked_again(tmp_path):
    requests = compound_requests("voc2007", [(11, 7), (14, 12), (8, 17)])
    answers = {0: ("A dog and a cat.\nA cat and a dog on a", "length"), 1: ("I'm sorry.", "stop"),
               2: ("", "stop")}
    path = tmp_path / "c.jsonl"
    result = generate_compound_prompts(path, "voc2007", _ScriptedGenerator(answers), requests)
    assert result.missing == [2] and result.answered_now == 2
    # "I'm sorry." parses as a prompt; the user sees it in the report (it names no class)
    assert read_compound_prompts(path) == ["A dog and a cat.", "I'm sorry."]
    assert compound_report("voc2007", read_compound_prompts(path)).naming_none == [1]
    again = _ScriptedGenerator({2: ("A chair by a sofa.", "stop")})
    generate_compound_prompts(path, "voc2007", again, requests)
    assert again.asked == [2] and read_compound_prompts(path)[-1] == "A chair by a sofa."


def test_nothing_answered_is_lost_when_the_run_is_interrupted(tmp_path):
    requests = compound_requests("voc2007", [(11, 7), (14, 12), (8, 17)])
    answers = {i: (f"A {' and a '.join(r.label_names)}.", "stop") for i, r in enumerate(requests)}
    path = tmp_path / "c.jsonl"
    with pytest.raises(KeyboardInterrupt):
        generate_compound_prompts(path, "voc2007", _ScriptedGenerator(answers, fail_after=2), requests)
    assert read_compound_prompts(path) == ["A dog and a cat.", "A person and a horse."]
    rest = _ScriptedGenerator(answers)
    assert generate_compound_prompts(path, "voc2007", rest, requests).complete and rest.asked == [2]


def test_torn_last_line_is_cut_and_asked_again_and_a_damaged_line_is_an_error(tmp_path):
    requests = compound_requests("voc2007", [(11, 7), (14, 12)])
    answers = {i: (f"A {' and a '.join(r.label_names)}.", "stop") for i, r in enumerate(requests)}
    path = tmp_path / "c.jsonl"
    with pytest.raises(KeyboardInterrupt):
        generate_compound_prompts(path, "voc2007", _ScriptedGenerator(answers, fail_after=1), requests)
    with open(path, "a") as f:
        f.write('{"index": 1, "request": "tor')             # a write cut by a kill
    with pytest.warns(RuntimeWarning, match=r"c\.jsonl:2: an incomplete last line .* skipped"):
        assert read_compound_prompts(path) == ["A dog and a cat."]
    rest = _ScriptedGenerator(answers)
    with pytest.warns(RuntimeWarning, match="was cut; its request will be asked again"):
        result = generate_compound_prompts(path, "voc2007", rest, requests)
    assert rest.asked == [1] and result.complete
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_compound_prompts(path) == ["A dog and a cat.", "A person and a horse."]
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "not json", lines[1]]) + "\n")
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: expected a JSON object with 'index'"):
        read_compound_prompts(path)
    with pytest.raises(MissingFileError, match="does not exist"):
        read_compound_prompts(tmp_path / "missing.jsonl")


def test_duplicate_prompts_are_read_once(tmp_path):
    requests = compound_requests("voc2007", [(11, 7), (7, 11)])
    answers = {0: ("A dog and a cat.\nA cat and a dog.", "stop"), 1: ("a  cat and a DOG.\nA dog and a cat!", "stop")}
    path = tmp_path / "c.jsonl"
    generate_compound_prompts(path, "voc2007", _ScriptedGenerator(answers), requests)
    assert read_compound_prompts(path) == ["A dog and a cat.", "A cat and a dog.", "A dog and a cat!"]
