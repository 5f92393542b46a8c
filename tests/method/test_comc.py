"""The CoMC estimator: scikit-learn's protocol, fit / decision_function / predict, variants, and the traps for a student."""
import dataclasses
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone

from lcmc_core.method.classifier import TextClassifier, TrainConfig
from lcmc_core.method.comc import CoMC, decision_functions, hyperparameters
from lcmc_core.method.mapping import cross_modal_map


def _unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def _data(n=300, c=4, d=16, seed=0):
    """Texts whose embedding is the normalised sum of their labels' directions (a learnable toy problem)."""
    rng = np.random.default_rng(seed)
    directions = _unit(c, d, seed=seed + 1)
    y = (rng.random((n, c)) < 0.4).astype(np.float32)
    y[y.sum(1) == 0, 0] = 1
    x = F.normalize(torch.as_tensor(y) @ directions + 0.05 * _unit(n, d, seed=seed + 2), dim=-1)
    return x, torch.as_tensor(y), directions


SMALL = TrainConfig(epochs=3, batch_size=64)


@pytest.fixture(scope="module")
def fitted():
    x, y, memory = _data()
    return CoMC(classifier=SMALL).fit(x, y, memory), memory


# --- the hyperparameters: declared once, read back -------------------------------------------
def test_hyperparameters_are_the_constructor_parameters_with_the_official_defaults():
    hp = {h.name: h for h in hyperparameters()}
    assert list(hp) == ["alpha", "temperature", "memory_top_k", "local_weight", "map_global", "map_local",
                        "classifier", "seed"]
    assert hp["alpha"].default == 0.7 and hp["temperature"].default == 0.01 and hp["local_weight"].default == 0.5
    assert hp["memory_top_k"].default is None and hp["classifier"].default == TrainConfig()
    assert hp["classifier"].default.noise_std == 0.1                    # the official noise injection
    assert {h.name for h in hp.values() if h.stage == "training"} == {"classifier", "seed"}
    assert all(h.help for h in hp.values())
    assert CoMC().get_params() == {name: h.default for name, h in hp.items()}


def test_scikit_learn_protocol_clone_get_set_params_and_repr():
    est = CoMC(alpha=0.5, classifier=SMALL)
    assert est.get_params(deep=True)["alpha"] == 0.5
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    assert est.set_params(temperature=0.05) is est and est.temperature == 0.05
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(not_a_parameter=1)
    assert repr(CoMC()) == "CoMC()" and repr(CoMC(alpha=0.5)) == "CoMC(alpha=0.5)"


@pytest.mark.parametrize("params, match", [
    (dict(alpha=1.5), "CoMC.alpha"), (dict(temperature=0.0), "CoMC.temperature"),
    (dict(memory_top_k=0), "CoMC.memory_top_k"), (dict(local_weight=-0.1), "CoMC.local_weight"),
    (dict(map_global="yes"), "CoMC.map_global"), (dict(classifier={"epochs": 1}), "CoMC.classifier"),
    (dict(seed=-1), "CoMC.seed"),
])
def test_bad_hyperparameters_are_refused_by_fit_with_their_name(params, match):
    x, y, memory = _data(40)
    with pytest.raises(ValueError, match=match):
        CoMC(**params).fit(x, y, memory)


# --- fit / decision_function / predict ---------------------------------------------------------
def test_fit_learns_the_classifier_and_keeps_the_memory_and_the_epoch_weights(fitted):
    est, memory = fitted
    assert est.coef_.shape == (4, 16) and est.n_classes_ == 4 and est.n_features_ == 16
    assert torch.equal(est.memory_, memory) and len(est.history_) == 3
    assert est.epoch_weights_.shape == (3, 4, 16) and torch.equal(est.epoch_weights_[-1], est.coef_)


def test_decision_function_is_the_mapped_global_merged_with_the_max_pooled_mapped_local(fitted):
    est, memory = fitted
    g, loc = _unit(5, 16, seed=7), _unit(5, 3, 16, seed=8)
    expected_g = cross_modal_map(g, memory, 0.01, 0.7) @ est.coef_.T
    expected_l = (cross_modal_map(loc, memory, 0.01, 0.7) @ est.coef_.T).amax(dim=1)
    np.testing.assert_allclose(est.decision_function(g, loc), (0.5 * expected_g + 0.5 * expected_l).numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(est.decision_function(g), expected_g.numpy(), atol=1e-6)   # no local branch


def test_predict_takes_each_images_top_k_above_the_threshold(fitted):
    est, _ = fitted
    g = _unit(6, 16, seed=3)
    scores = est.decision_function(g)
    pred = est.predict(g, k=2, threshold=-np.inf)
    assert (pred.sum(1) == 2).all()
    assert all(set(np.flatnonzero(p)) == set(np.argsort(-s)[:2]) for p, s in zip(pred, scores))
    assert (est.predict(g, k=4, threshold=np.inf) == 0).all()


def test_a_trained_model_ranks_images_of_its_classes_first():
    x, y, memory = _data(600)
    est = CoMC(classifier=TrainConfig(epochs=10, batch_size=64)).fit(x, y, memory)
    from lcmc_core.method.metrics import mean_average_precision
    assert mean_average_precision(est.decision_function(memory), np.eye(4)) == 100.0


# --- the traps -------------------------------------------------------------------------------
def test_images_that_are_not_unit_vectors_are_refused_naming_the_input(fitted):
    est, _ = fitted
    g, loc = _unit(5, 16), _unit(5, 3, 16)
    with pytest.raises(ValueError, match="global_emb: expected L2-normalised rows"):
        est.decision_function(10 * g, loc)                     # raw encode_image output
    with pytest.raises(ValueError, match="local_emb: expected L2-normalised rows"):
        est.decision_function(g, 3 * loc)


def test_a_memory_that_is_not_unit_norm_is_refused(fitted):
    x, y, memory = _data(40)
    with pytest.raises(ValueError, match="memory: expected L2-normalised rows"):
        CoMC(classifier=SMALL).fit(x, y, 2 * memory)
    with pytest.raises(ValueError, match="memory: expected an"):
        CoMC(classifier=SMALL).fit(x, y, _unit(3, 8))


def test_no_mapping_is_an_explicit_choice(fitted):
    x, y, _ = _data(40)
    with pytest.raises(TypeError, match="memory"):
        CoMC(classifier=SMALL).fit(x, y)                       # forgetting the memory is not silent
    with pytest.warns(UserWarning, match="memory=None, so nothing is mapped: alpha=0.7"):
        est = CoMC(classifier=SMALL).fit(x, y, None)
    g = _unit(4, 16)
    np.testing.assert_allclose(est.decision_function(g), (g @ est.coef_.T).numpy(), atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CoMC(alpha=1.0, classifier=SMALL).fit(x, y, None)      # alpha 1 says "no mapping": nothing to warn about


def test_unfitted_estimator_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        CoMC().decision_function(_unit(2, 16))


# --- variants ---------------------------------------------------------------------------------
def test_with_params_keeps_the_fit_for_inference_hyperparameters_and_drops_it_for_training_ones(fitted):
    est, memory = fitted
    g = _unit(4, 16, seed=5)
    variant = est.with_params(alpha=0.2, temperature=0.05)
    assert variant.classifier_ is est.classifier_ and est.alpha == 0.7   # the same fit; the original is unchanged
    np.testing.assert_allclose(variant.decision_function(g),
                               (cross_modal_map(g, memory, 0.05, 0.2) @ est.coef_.T).numpy(), atol=1e-6)
    assert np.allclose(est.with_params(alpha=1.0).decision_function(g), (g @ est.coef_.T).numpy(), atol=1e-6)
    retrain = est.with_params(classifier={"noise_std": 0.0})
    assert retrain.classifier == dataclasses.replace(SMALL, noise_std=0.0) and not hasattr(retrain, "coef_")
    assert not hasattr(est.with_params(seed=3), "coef_")
    with pytest.raises(ValueError, match="CoMC.alpha"):
        est.with_params(alpha=2.0)


def test_memory_top_k_and_the_branch_switches_reach_the_scores(fitted):
    est, memory = fitted
    g, loc = _unit(6, 16, seed=11), _unit(6, 3, 16, seed=12)
    full = est.scores(g, loc)
    top1 = est.with_params(memory_top_k=1).scores(g, loc)
    assert not torch.allclose(top1["merged"], full["merged"]) and "bound" in top1
    expected = F.normalize(memory[(g @ memory.T).argmax(1)], dim=-1)     # top-1: the nearest memory row itself
    torch.testing.assert_close(top1["global"], (0.7 * g + 0.3 * expected) @ est.coef_.T)
    no_global = est.with_params(map_global=False).scores(g, loc)
    torch.testing.assert_close(no_global["global"], g @ est.coef_.T)
    torch.testing.assert_close(no_global["local"], full["local"])
    no_local = est.with_params(map_local=False).scores(g, loc)
    torch.testing.assert_close(no_local["local"], (loc @ est.coef_.T).amax(dim=1))
    weighted = est.with_params(local_weight=0.25).scores(g, loc)
    torch.testing.assert_close(weighted["merged"], 0.75 * full["global"] + 0.25 * full["local"])


def test_from_classifier_adopts_a_trained_classifier_or_a_weight_matrix(fitted):
    est, memory = fitted
    g = _unit(4, 16, seed=2)
    same = CoMC.from_classifier(est.classifier_, memory, history=est.history_, **est.get_params())
    np.testing.assert_array_equal(same.decision_function(g), est.decision_function(g))
    from_weight = CoMC.from_classifier(est.coef_.numpy(), memory, alpha=0.5)
    assert isinstance(from_weight.classifier_, TextClassifier) and from_weight.alpha == 0.5
    with pytest.raises(ValueError, match="trained: expected a TextClassifier or a \\(C, D\\) weight"):
        CoMC.from_classifier(torch.zeros(3), memory)


def test_decision_functions_scores_several_models_as_each_alone(fitted):
    est, _ = fitted
    g, loc = _unit(5, 16, seed=4), _unit(5, 2, 16, seed=5)
    models = {"a": est, "b": est.with_params(alpha=0.3), "c": est.with_params(alpha=1.0)}
    together = decision_functions(models, g, loc)
    for name, model in models.items():
        torch.testing.assert_close(together[name]["merged"], model.scores(g, loc)["merged"])


def test_decision_functions_keeps_only_the_entries_asked_for(fitted):
    est, _ = fitted
    g, loc = _unit(5, 16, seed=4), _unit(5, 2, 16, seed=5)
    models = {"a": est, "b": est.with_params(alpha=1.0)}
    kept = decision_functions(models, g, loc, keep={"a": ["global", "merged"]})
    assert set(kept["a"]) == {"global", "merged"} and set(kept["b"]) == {"global", "local", "merged"}
    torch.testing.assert_close(kept["a"]["global"], est.scores(g, loc)["global"])
    with pytest.raises(ValueError, match=r"keep: names \['z'\] are not among the models"):
        decision_functions(models, g, loc, keep={"z": ["merged"]})
    with pytest.raises(ValueError, match=r"keep\['a'\]: expected a list of entries among"):
        decision_functions(models, g, loc, keep={"a": "merged"})


# --- the authors' released checkpoint ----------------------------------------------------------
def test_the_released_checkpoint_is_a_fitted_estimator_with_the_official_inference():
    est = CoMC.from_official_checkpoint()
    assert est.coef_.shape == (80, 1024) and est.memory_.shape == (80, 1024) and est.official_files_verified_
    assert est.get_params() == CoMC().get_params()
    g, loc = _unit(3, 1024, seed=1), _unit(3, 49, 1024, seed=2)
    m = F.normalize(torch.softmax(g @ est.memory_.T / 0.01, dim=-1) @ est.memory_, dim=-1)
    m_loc = F.normalize(torch.softmax(loc @ est.memory_.T / 0.01, dim=-1) @ est.memory_, dim=-1)
    official = 0.5 * ((0.7 * g + 0.3 * m) @ est.coef_.T) + 0.5 * ((0.7 * loc + 0.3 * m_loc) @ est.coef_.T).amax(1)
    np.testing.assert_allclose(est.decision_function(g, loc), official.numpy(), atol=1e-5)
