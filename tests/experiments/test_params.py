"""Params: one declaration of every parameter; types checked against the defaults, ranges before anything runs."""
import dataclasses

import pytest

from lcmc_core.errors import ConfigError, LcmcError
from lcmc_core.experiments import params as P
from lcmc_core.experiments.comparison import ComparisonSettings, Evaluation
from lcmc_core.method.classifier import TrainConfig
from lcmc_core.method.comc import CoMC


def build(**tree):
    return P.params_from_tree(tree, {k: f"--set {k}" for k in tree})


def test_the_defaults_are_the_toy_profile_and_round_trip_through_a_tree():
    p = P.Params()
    assert p.dataset == "emoji-voc" and p.clip_pretrained == "toy" and p.method.alpha == 0.7
    assert P.params_from_tree(p.to_tree()) == p
    assert p.seeds == [0]


def test_every_leaf_is_listed_with_its_default_and_help():
    leaves = P.flatten()
    assert leaves["method.alpha"][1] == 0.7 and "weight of the image" in leaves["method.alpha"][2]
    assert leaves["method.classifier.noise_std"][1] == 0.1 and "llm.base_url" in leaves
    assert all(isinstance(k, str) and not k.endswith(".") for k in leaves)


@pytest.mark.parametrize("key,full", [("alpha", "method.alpha"), ("noise_std", "method.classifier.noise_std"),
                                      ("model", "llm.model"), ("seed", "seed"), ("batch_size", "batch_size")])
def test_a_unique_leaf_name_resolves_to_its_full_key(key, full):
    assert P.resolve_key(key, "here") == full


@pytest.mark.parametrize("tree, expected", [
    ({"corpus_size": 0}, "corpus_size: expected an integer in [1, 10000000], got 0"),
    ({"corpus_size": 10**8}, "corpus_size: expected an integer in [1, 10000000]"),
    ({"seed": 10**20}, "seed: expected an integer in [0, 2147483647]"),
    ({"seed": 2**31 - 1, "n_seeds": 2}, "seed: seed + n_seeds - 1 must stay <= 2147483647"),
    ({"clip_pretrained": ""}, "clip_pretrained: expected an open_clip tag"),
    ({"evaluation": {"n_boot": 10**9}}, "evaluation.n_boot: expected an integer in [0, 100000]"),
    ({"n_test": 1}, "n_test: expected an integer >= 20"),
    ({"n_test": -5}, "n_test: expected an integer >= 20"),
    ({"dataset": "imagenet"}, "dataset: expected one of 'emoji-voc', 'voc2007', 'coco2014', 'nuswide', got 'imagenet'"),
    ({"device": "gpu"}, "device: expected one of cpu | cuda | cuda:N | mps | auto, got 'gpu'"),
    ({"batch_size": 0}, "batch_size: expected an integer >= 1"),
    ({"num_workers": -1}, "num_workers: expected an integer in [0, 256]"),
    ({"seed": -2}, "seed: expected an integer in [0, 2147483647]"),
    ({"missing_images": "ignore"}, "missing_images: expected one of 'fail', 'skip'"),
    ({"method": {"alpha": 1.5}}, "method.alpha: expected a finite number in [0, 1], got 1.5"),
    ({"comparison": {"memory": "images"}}, "comparison.memory: expected one of 'prompts', 'corpus'"),
    ({"method": {"memory_top_k": 0}}, "method.memory_top_k: expected an integer >= 1, got 0"),
    ({"method": {"map_local": "no"}}, "'method.map_local' (parameters): expected true or false"),
    ({"evaluation": {"n_boot": -1}}, "evaluation.n_boot: expected an integer in [0, 100000]"),
    ({"method": {"classifier": {"epochs": 0}}}, "method.classifier.epochs: expected an integer >= 1"),
    ({"llm": {"concurrency": 0}}, "llm.concurrency: expected an integer in [1, 256]"),
    ({"llm": {"read_timeout_s": 0}}, "llm.read_timeout_s: expected a finite number > 0"),
    ({"llm": {"base_url": "localhost:8000"}}, "llm.base_url: expected an http(s) URL"),
])
def test_ranges_and_choices_are_checked_with_the_name_and_the_accepted_range(tree, expected):
    with pytest.raises(ConfigError) as err:
        P.params_from_tree(tree)
    assert expected in str(err.value)
    assert isinstance(err.value, LcmcError)


@pytest.mark.parametrize("url", ["http://user:sk-abcdefghijklmnop0123@host/v1", "http://host/v1?api_key=abc",
                                 "https://host/v1?key=abc"])
def test_a_url_with_credentials_is_refused_without_echoing_them(url):
    with pytest.raises(ConfigError, match="carries credentials") as err:
        P.params_from_tree({"llm": {"base_url": url}})
    assert "sk-abcdefghijklmnop0123" not in str(err.value) and "=abc" not in str(err.value)


@pytest.mark.parametrize("key, value, expected", [
    ("corpus_size", "three", "expected an integer"), ("corpus_size", 2.5, "an integer is expected"),
    ("corpus_size", True, "expected an integer"), ("method.alpha", "fast", "expected a number"),
    ("verify_images", 1, "expected true or false"), ("clip_model", 12, "expected a string"),
    ("comparison.k_range", [1], "expected a list of 2 an integer and an integer"),
    ("evaluation.f1_threshold", "x", "expected a number or null"),
    ("method.memory_top_k", 2.5, "expected an integer or null"),
])
def test_wrong_types_are_refused_naming_key_type_and_value(key, value, expected):
    tree = {}
    P.set_path(tree, key, value)
    with pytest.raises(ConfigError) as err:
        P.params_from_tree(tree, {key: "profile.yaml"})
    msg = str(err.value)
    assert f"'{key}'" in msg and expected in msg and repr(value) in msg and "profile.yaml" in msg


def test_ints_become_floats_lists_become_tuples_and_null_is_allowed_where_declared():
    p = build(method={"alpha": 1, "memory_top_k": None}, comparison={"k_range": [2, 3]},
              evaluation={"f1_threshold": None})
    assert p.method.alpha == 1.0 and isinstance(p.method.alpha, float) and p.method.memory_top_k is None
    assert p.comparison.k_range == (2, 3) and p.evaluation.f1_threshold is None


def test_a_yaml_number_for_a_string_gets_a_quoting_hint():
    with pytest.raises(ConfigError, match="quote it"):
        P.params_from_tree({"toy_variant": 2024})


def test_the_dataclasses_stay_the_single_declaration():
    # the method's hyperparameters are the estimator's (read from CoMC's constructor), not copies of them
    hints = {f.name: f.type for f in dataclasses.fields(P.Params)}
    assert P.Params().method.estimator().get_params() == CoMC().get_params()
    assert P.Params().method.classifier == TrainConfig()
    assert P.Params().comparison == ComparisonSettings() and P.Params().evaluation == Evaluation()
    assert "method" in hints and "llm" in hints


def test_toy_world_takes_no_data_root():
    with pytest.raises(ConfigError, match="data_root: the toy world"):
        P.params_from_tree({"data_root": "/data/voc"})
