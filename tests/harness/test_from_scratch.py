"""Notebook 07 (CoMC from scratch): its plain-torch cells give the package's CoMC scores, and never use the method layer.

The notebook's cells tagged ``from-scratch`` are run here on small synthetic inputs (the seven names its
``inputs`` cell defines) and compared with ``CoMC(seed=...).fit(...).decision_function(...)``; changing one
step of the recipe in those cells must break the agreement. The slow test executes the notebook with the smoke
profile and reads the check it saves.
"""
import ast
import builtins
import importlib
import json
import math
import pkgutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import lcmc_core.method
from lcmc_core import CoMC, mean_average_precision

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "07_comc_from_scratch.ipynb"
CHECK_HEADING = "## Check against the package"
# What the notebook's `inputs` cell hands the from-scratch cells.
INPUT_NAMES = {"seed", "text_embeddings", "targets", "memory", "image_global", "image_local", "test_labels"}


def _notebook():
    return nbformat.read(str(NOTEBOOK), as_version=4)


def _tagged(tag: str) -> list:
    return [c for c in _notebook().cells if c.cell_type == "code" and tag in c.get("metadata", {}).get("tags", [])]


def _scratch_source(mutation: tuple[str, str] | None = None) -> str:
    """The from-scratch cells as one program; ``mutation`` = (old, new) replaces one line of the recipe."""
    source = "\n\n".join(c.source for c in _tagged("from-scratch"))
    if mutation is not None:
        old, new = mutation
        assert source.count(old) == 1, f"the from-scratch cells no longer hold {old!r} exactly once"
        source = source.replace(old, new)
    return source


def _method_layer_names() -> set[str]:
    """Every public name of every module of lcmc_core.method (CoMC, train_text_classifier, score_images, ...)."""
    names = set()
    for info in pkgutil.iter_modules(lcmc_core.method.__path__):
        module = importlib.import_module(f"lcmc_core.method.{info.name}")
        names |= set(getattr(module, "__all__", ()))
    return names


def _synthetic_inputs(n_texts: int, seed: int, n_classes: int = 5, dim: int = 16, n_images: int = 40,
                      positions: int = 3) -> dict:
    """Inputs shaped like the notebook's: texts not yet normalised, unit memory and image rows, local ones float16."""
    rng = np.random.default_rng(100 + n_texts)

    def unit(*shape):
        x = torch.as_tensor(rng.normal(size=(*shape, dim)), dtype=torch.float32)
        return x / x.norm(dim=-1, keepdim=True)

    targets = (rng.random((n_texts, n_classes)) < 0.3).astype(np.float32)
    targets[0] = 0.0    # a text naming no class (no pair: contributes 0)
    targets[1] = 1.0    # a text naming every class (no negative)
    labels = rng.choice([1, 0, 0, 0, -1], size=(n_images, n_classes))
    labels[0] = 1       # every class has a positive
    return {"seed": seed,
            "text_embeddings": torch.as_tensor(rng.normal(size=(n_texts, dim)) * 3, dtype=torch.float32),
            "targets": torch.as_tensor(targets), "memory": unit(n_classes),
            "image_global": unit(n_images), "image_local": unit(n_images, positions).half(), "test_labels": labels}


def _run_scratch(inputs: dict, mutation=None) -> dict:
    """Execute the from-scratch cells with ``inputs`` (and math, numpy, torch) as their only names."""
    namespace = {"math": math, "np": np, "torch": torch, **inputs}
    exec(compile(_scratch_source(mutation), str(NOTEBOOK), "exec"), namespace)
    return namespace


def _package(inputs: dict) -> CoMC:
    return CoMC(seed=inputs["seed"]).fit(inputs["text_embeddings"], inputs["targets"], inputs["memory"])


# --------------------------------------------------------------------------------------------- agreement

@pytest.mark.parametrize(("n_texts", "seed"), [(1300, 0), (1300, 7), (200, 3)],
                         ids=["two-batches-and-a-dropped-remainder", "another-seed", "smaller-than-one-batch"])
def test_the_from_scratch_cells_give_the_package_scores(n_texts, seed):
    inputs = _synthetic_inputs(n_texts, seed)
    scratch = _run_scratch(inputs)
    package = _package(inputs)
    package_scores = package.decision_function(inputs["image_global"], inputs["image_local"])
    assert scratch["scratch_scores"].shape == package_scores.shape == (40, 5)
    assert np.abs(scratch["scratch_scores"] - package_scores).max() <= 1e-5
    assert scratch["step"] == 20 * max(1, n_texts // 512)                   # full batches only, 20 epochs
    np.testing.assert_allclose(scratch["scratch_losses"], [h["train_loss"] for h in package.history_], rtol=1e-6)
    assert scratch["map_scratch"] == pytest.approx(mean_average_precision(package_scores, inputs["test_labels"]),
                                                   abs=1e-6)


def test_the_from_scratch_map_is_the_packages_on_ties_and_difficult_labels():
    inputs = _synthetic_inputs(200, 0)
    scratch = _run_scratch(inputs)
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, size=(60, 6)).astype(float)           # many ties: the stable order decides
    labels = rng.choice([1, 0, -1], size=(60, 6))
    labels[:, 5] = 0                                                   # a class without positives: AP 0
    with pytest.warns(UserWarning, match="no positive"):
        expected = mean_average_precision(scores, labels)
    assert scratch["mean_average_precision_from_scratch"](scores, labels) == pytest.approx(expected, abs=1e-9)
    # by hand: one class, ranking [pos, neg, difficult, pos] -> (1/1 + 2/4) / 2 = 75%
    hand = scratch["mean_average_precision_from_scratch"](np.array([[4.0], [3.0], [2.0], [1.0]]),
                                                          np.array([[1], [0], [-1], [1]]))
    assert hand == pytest.approx(75.0)


# A change to one step of the recipe must show in the scores (so the agreement above is not a coincidence).
MUTATIONS = {
    "no noise": ("NOISE_STD = 0.1", "NOISE_STD = 0.0"),
    "last batch kept": ("n_batches = max(1, n_texts // BATCH_SIZE)", "n_batches = math.ceil(n_texts / BATCH_SIZE)"),
    "batch order and noise generators swapped": (
        "init_state, shuffle_state, noise_state =", "init_state, noise_state, shuffle_state ="),
    "no warm-up": ("if epoch < WARMUP_EPOCHS:\n        return WARMUP_LR", "if False:\n        return WARMUP_LR"),
    "mean instead of max over positions": (".amax(dim=1)", ".mean(dim=1)"),
    "mapping renormalised": ("return ALPHA * f + (1 - ALPHA) * mixture",
                             "return torch.nn.functional.normalize(ALPHA * f + (1 - ALPHA) * mixture, dim=-1)"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS), ids=list(MUTATIONS))
def test_changing_one_step_of_the_recipe_breaks_the_agreement(mutation):
    inputs = _synthetic_inputs(1300, 0)
    package_scores = _package(inputs).decision_function(inputs["image_global"], inputs["image_local"])
    scratch = _run_scratch(inputs, MUTATIONS[mutation])
    assert np.abs(scratch["scratch_scores"] - package_scores).max() > 1e-5


# --------------------------------------------------------------------------------------------- static

def test_the_notebook_imports_nothing_from_the_method_layer():
    for cell in _notebook().cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not any(m == "lcmc_core.method" or m.startswith("lcmc_core.method.") for m in modules), \
                f"a code cell imports {modules}"


def test_only_the_check_section_uses_the_method_layer():
    """Before the check heading no code cell names anything of lcmc_core.method; the check section uses CoMC and its mAP."""
    method_names = _method_layer_names()
    assert {"CoMC", "train_text_classifier", "score_images", "cross_modal_map", "mean_average_precision"} <= method_names
    cells = _notebook().cells
    check = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith(CHECK_HEADING))

    def names_in(cell) -> set[str]:
        tree = ast.parse(cell.source)
        found = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        found |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        imported = [a for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names]
        return found | {a.name for a in imported} | {a.asname for a in imported if a.asname}

    for cell in cells[:check]:
        if cell.cell_type == "code":
            assert not names_in(cell) & method_names, f"before the check: {sorted(names_in(cell) & method_names)}"
    after = set().union(*(names_in(c) for c in cells[check:] if c.cell_type == "code"))
    assert {"CoMC", "fit", "decision_function", "mean_average_precision"} <= after


def test_the_from_scratch_cells_use_only_the_inputs_math_numpy_and_torch():
    """The cells tagged from-scratch read no name they do not define, except the inputs and the three modules."""
    assert len(_tagged("inputs")) == 1
    tree = ast.parse(_scratch_source())
    defined = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    defined |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    defined |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) for a in n.args.args}
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    outside = read - defined - set(dir(builtins))
    assert outside <= INPUT_NAMES | {"math", "np", "torch"}, sorted(outside)
    inputs_cell = ast.parse(_tagged("inputs")[0].source)
    assigned = {n.id for n in ast.walk(inputs_cell) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assert INPUT_NAMES <= assigned


# --------------------------------------------------------------------------------------------- the notebook, run

@pytest.mark.slow
def test_the_smoke_run_of_notebook_07_matches_the_package(tmp_path):
    from lcmc_core.harness.reproduce import reproduce

    out = reproduce("smoke", only=["07"], out=tmp_path / "results", progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["notebooks"]["07_comc_from_scratch"]["status"] == "ok"
    check = json.loads((out / "tables" / "07_from_scratch_check.json").read_text())
    assert set(check) == {"max_abs_difference", "map_scratch", "map_package"}
    assert 0 <= check["max_abs_difference"] <= 1e-5
    assert 0 < check["map_package"] <= 100 and abs(check["map_scratch"] - check["map_package"]) <= 1e-6
    for suffix in (".png", ".pdf"):
        assert (out / "figures" / f"07_from_scratch{suffix}").stat().st_size > 0
