"""The numbered notebooks: stored clean, parameters declared right, and the smoke profile runs them all.

The static checks parse the .ipynb files only. The smoke run executes every notebook once with
``lcmc_core.harness.reproduce`` (module fixture; a kernel per notebook, toy CLIPs trained at smoke size in
the session's fresh cache), then checks the results folder: executed copies, HTML, manifest, and
the figures and tables each notebook must write.
"""
import ast
import json
import math
from pathlib import Path

import nbformat
import pytest

from lcmc_core.experiments import profiles
from lcmc_core.experiments.experiment import Experiment
from lcmc_core.images import toyclip

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = ["00_toy_world", "01_corpus_generation", "02_classifier_training", "03_modality_gap",
             "04_mapping_ablations", "05_main_results", "06_gap_study", "07_comc_from_scratch"]
SMOKE_RUNS = [n for n in NOTEBOOKS if n != "06_gap_study"]     # 06 runs with the study profile only
ALLOWED_IMPORTS = {"lcmc_core", "numpy", "pandas", "matplotlib", "seaborn", "pathlib", "json", "time",
                   "IPython"}  # IPython.display.Markdown: the generated "what this shows" cells
# 07 writes the method again in plain PyTorch, on purpose (tests/harness/test_from_scratch.py).
EXTRA_IMPORTS = {"07_comc_from_scratch": {"math", "torch"}}

# What each notebook must write under the results folder (smoke profile), besides its executed copy.
EXPECTED = {
    "00_toy_world": ["figures/00_pipeline.png", "figures/00_class_sprites.png",
                     "figures/00_sample_scenes.png", "figures/00_test_label_frequency.png",
                     "figures/00_toy_clip_metrics.png", "figures/00_pretraining_curves.png",
                     "figures/00_variant_retrieval_gap.png", "tables/00_test_label_frequency.csv",
                     "tables/00_toy_clip_metrics.csv", "tables/toy_clip_metrics.json"],
    "01_corpus_generation": ["figures/01_label_frequency.png",      # outcomes: only when a request failed
                             "figures/01_labels_per_sentence.png", "figures/01_cooccurrence.png",
                             "tables/01_generation_summary.csv", "tables/01_example_sentences.csv",
                             "tables/01_label_statistics.csv", "tables/01_prompt_augmentation.csv"],
    "02_classifier_training": ["figures/02_noise_example.png", "figures/02_training_curves.png",
                               "tables/02_heldout_text_map.csv", "tables/02_text_vs_image_map.csv"],
    "03_modality_gap": ["figures/03_mapping_one_image.png", "figures/03_pca_before_after.png",
                        "figures/03_cosine_histograms.png", "tables/03_gap_report.csv",
                        "tables/03_gap_test_vs_corpus.csv"],
    "04_mapping_ablations": ["figures/04_mapping_heatmap.png", "figures/04_ablations.png",
                             "tables/04_mapping_sweep.csv", "tables/04_memory.csv", "tables/04_branches.csv",
                             "tables/04_noise.csv", "tables/04_corpus_size.csv", "tables/04_losses.csv",
                             "tables/04_corpus_labels.csv"],
    "05_main_results": ["figures/05_main_results.png", "figures/05_per_class_ap.png",
                        "figures/05_top3_predictions.png", "figures/05_learner_curves.png",
                        "tables/05_main_results.csv", "tables/05_per_class_ap.csv", "tables/05_sparc_prompts.csv",
                        "tables/05_main_results_per_seed.csv", "tables/05_paired_differences.csv"],
    "07_comc_from_scratch": ["figures/07_from_scratch.png", "tables/07_from_scratch_check.json"],
}
TOY_CLIP_KEYS = ("i2t_recall@1", "i2t_recall@5", "t2i_recall@1", "t2i_recall@5", "zero_shot_map", "modality_gap")


def _read(name: str):
    return nbformat.read(str(NOTEBOOK_DIR / f"{name}.ipynb"), as_version=4)


def _parameters_cell(nb):
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected exactly one cell tagged 'parameters', found {len(cells)}"
    return cells[0]


def _assigned(source: str) -> dict:
    """name -> literal value of every `name = literal` in a parameters cell (non-literals fail)."""
    out = {}
    for node in ast.parse(source).body:
        assert isinstance(node, (ast.Assign, ast.AnnAssign)), f"parameters cell: only assignments, got {ast.dump(node)[:80]}"
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        out[target.id] = ast.literal_eval(node.value)
    return out


# --------------------------------------------------------------------------------------------- static

def test_the_numbered_notebooks_exist():
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs_and_starts_with_a_narrative(name):
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {name[:2]}")
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: a code cell holds outputs"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_imports_only_the_package_and_plotting_libraries(name):
    for cell in _read(name).cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative import"
                modules = [node.module]
            else:
                continue
            for m in modules:
                assert m.split(".")[0] in ALLOWED_IMPORTS | EXTRA_IMPORTS.get(name, set()), f"{name} imports {m}"
        calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not calls & {"input", "exec", "eval"}, f"{name} calls {calls & {'input', 'exec', 'eval'}}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_declares_only_what_the_runner_injects(name):
    import papermill

    declared = _assigned(_parameters_cell(_read(name)).source)
    assert declared == {"profile": "toy", "out_dir": "", "params": {}}  # the defaults are the toy profile's
    assert set(profiles.NOTEBOOK_PARAMETERS) == set(declared)
    # papermill reads every parameter (a comment papermill cannot parse would silently drop one)
    assert set(papermill.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))) == set(declared)
    exp = Experiment.from_notebook(declared["profile"], declared["out_dir"], declared["params"])
    assert exp.is_toy and exp.params.toy_size == "toy"


# --------------------------------------------------------------------------------------------- smoke run

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Every notebook executed once with the smoke profile (the results folder and its manifest)."""
    from lcmc_core.harness.reproduce import reproduce

    out = reproduce("smoke", out=tmp_path_factory.mktemp("smoke") / "results", progress=False)
    return out, json.loads((out / "manifest.json").read_text())


@pytest.mark.slow
def test_the_smoke_main_table_equals_the_librarys_comparison(smoke_run):
    """Golden check: notebook 05's table is exactly what the library computes from the same parameters."""
    import pandas as pd

    out, manifest = smoke_run
    params = manifest["notebooks"]["05_main_results"]["parameters"]
    exp = Experiment.from_notebook("smoke", str(out), params)
    table = exp.comparisons(progress=False, extra_rows=exp.taidpt_rows()).table
    written = pd.read_csv(out / "tables" / "05_main_results.csv", index_col="method")
    pd.testing.assert_frame_equal(written, table, check_exact=False, rtol=1e-9, check_names=False,
                                  check_dtype=False)
    assert len(exp.params.seeds) == 2 and (written["seeds"] == 2).all()


@pytest.mark.slow
def test_smoke_profile_runs_every_notebook(smoke_run):
    out, manifest = smoke_run
    assert manifest["status"] == "ok" and manifest["profile"] == "smoke"
    assert sorted(manifest["notebooks"]) == SMOKE_RUNS
    for name, entry in manifest["notebooks"].items():
        assert entry["status"] == "ok", f"{name}: {entry.get('error')}"
        assert (out / "executed" / f"{name}.ipynb").stat().st_size > 0
        assert (out / "executed" / f"{name}.html").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", SMOKE_RUNS)
def test_smoke_notebook_writes_its_figures_and_tables(smoke_run, name):
    out, _ = smoke_run
    for rel in EXPECTED[name]:
        path = out / rel
        assert path.is_file() and path.stat().st_size > 0, f"{name} did not write {rel}"
        if path.suffix == ".png":
            assert path.with_suffix(".pdf").stat().st_size > 0


@pytest.mark.slow
def test_smoke_tables_carry_the_toy_world_note(smoke_run):
    out, _ = smoke_run
    for table in ("00_toy_clip_metrics", "03_gap_report", "05_main_results"):
        text = (out / "tables" / f"{table}.md").read_text()
        assert "Toy world" in text and "smoke profile" in text, table
    assert "CF1/OF1: ML-GCN definition" in (out / "tables" / "05_main_results.md").read_text()


@pytest.mark.slow
def test_toy_clip_metrics_json_has_every_variant(smoke_run):
    out, _ = smoke_run
    report = json.loads((out / "tables" / "toy_clip_metrics.json").read_text())
    assert report["size"] == "smoke"
    assert set(report["variants"]) == set(toyclip.VARIANTS)
    for variant, entry in report["variants"].items():
        for key in TOY_CLIP_KEYS:
            value = entry["metrics"][key]
            assert isinstance(value, (int, float)) and math.isfinite(value), f"{variant}: {key} = {value!r}"
        assert 0 <= entry["metrics"]["zero_shot_map"] <= 100 and entry["metrics"]["modality_gap"] >= 0


@pytest.mark.slow
def test_study_profile_runs_notebook_06_at_smoke_size(tmp_path):
    """The study profile's notebook (toy CLIP seeds x variants) at smoke sizes: every table and its figure."""
    import pandas as pd

    from lcmc_core.harness.reproduce import reproduce

    out = reproduce("study", out=tmp_path / "study", progress=False,
                    overrides={"toy_size": "smoke", "n_seeds": 2, "corpus_size": 300, "n_test": 128})
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["notebooks"]) == ["06_gap_study"] and manifest["status"] == "ok"
    per_seed = pd.read_csv(out / "tables" / "06_gap_study_per_seed.csv")
    assert len(per_seed) == 2 * len(toyclip.VARIANTS) and set(per_seed["seed"]) == {0, 1}
    summary = pd.read_csv(out / "tables" / "06_gap_study.csv")
    assert set(summary["variant"]) == set(toyclip.VARIANTS) and (summary["seeds"] == 2).all()
    overview = pd.read_csv(out / "tables" / "06_gap_study_overview.csv", index_col="variant")
    assert set(overview.index) == set(toyclip.VARIANTS) and "mAP CoMC (%)" not in overview
    assert (out / "figures" / "06_gap_study.png").stat().st_size > 0
