"""The notebook runner (lcmc_core.harness.reproduce) on the tiny notebooks in tests/notebooks/.

01_params writes a figure, a table and a JSON file from its parameters (corpus_size, method.alpha,
llm.model, verify_images stand in for any values), and prints a secret-named
environment variable, which the runner must redact); 02_fails raises in its cell 3; 03_after
would write 03_ran.txt. One full run (stopping at 02) and one ``--only 01`` run share a results
folder; papermill starts a kernel per notebook (~2-3 s each).
"""
import json
import os
import uuid
from pathlib import Path

import pytest

from lcmc_core.__main__ import main
from lcmc_core.errors import ConfigError
from lcmc_core.harness import provenance
from lcmc_core.harness import reproduce as rp

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
FAKE_KEY = "sk-test-" + uuid.uuid4().hex  # must end up in no produced file
MARKER = "lcmc-env-marker-" + uuid.uuid4().hex  # a harmless variable: no env variable is ever written


def _profile(tmp_path: Path,
             text: str = 'corpus_size: 4\nllm.model: "from profile"\nnotebooks:\n  "02": {corpus_size: 7}\n') -> Path:
    path = tmp_path / "testprof.yaml"
    path.write_text(text)
    return path


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A full run that fails at 02, then an --only 01 run into the same folder; snapshots of both."""
    tmp = tmp_path_factory.mktemp("reproduce")
    out = tmp / "results"
    profile = _profile(tmp)
    saved = {k: os.environ.get(k) for k in ("OPENAI_API_KEY", "LCMC_TEST_MARKER")}
    os.environ.update(OPENAI_API_KEY=FAKE_KEY, LCMC_TEST_MARKER=MARKER)
    try:
        with pytest.raises(rp.NotebookFailed) as failed:
            rp.reproduce(profile, out=out, notebooks_dir=NOTEBOOKS, progress=False)
        after_failure = {
            "manifest": json.loads((out / "manifest.json").read_text()),
            "files": [p.relative_to(out).as_posix() for p in _files(out)],
            "line_mtime": (out / "figures" / "line.png").stat().st_mtime_ns,
        }
        only_out = rp.reproduce(profile, only=["01"], out=out, notebooks_dir=NOTEBOOKS, progress=False,
                                overrides={"alpha": 1})
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"out": out, "profile": profile, "error": failed.value, "after_failure": after_failure,
            "only_out": only_out, "manifest": json.loads((out / "manifest.json").read_text())}


@pytest.mark.slow
def test_failure_names_notebook_cell_and_executed_copy(runs):
    err, out = runs["error"], runs["out"]
    msg = str(err)
    assert err.notebook == "02_fails.ipynb" and err.notebook_cell == 3 and err.ename == "ValueError"
    assert "notebook 02_fails.ipynb failed in cell 3" in msg and "planned failure" in msg
    assert "raise ValueError" in msg, "the message quotes the failing cell"
    assert str(out / "executed" / "02_fails.ipynb") in msg
    assert "Traceback" in (out / "executed" / "02_fails.ipynb").read_text() or \
        "planned failure" in (out / "executed" / "02_fails.ipynb").read_text()


@pytest.mark.slow
def test_failure_keeps_prior_outputs_and_records_it(runs):
    snap = runs["after_failure"]
    files = set(snap["files"])
    assert {"executed/01_params.ipynb", "executed/01_params.html", "figures/line.png", "figures/line.pdf",
            "tables/values.csv", "tables/values.md", "tables/values.tex", "tables/params.json",
            "executed/02_fails.ipynb", "executed/02_fails.html", "manifest.json"} <= files
    assert not any("03_" in f for f in files), "nothing after the failing notebook runs"
    m = snap["manifest"]
    assert m["status"] == "failed" and m["failure"]["notebook"] == "02_fails.ipynb"
    assert m["failure"]["notebook_cell"] == 3 and m["failure"]["ename"] == "ValueError"
    nbs = m["notebooks"]
    assert nbs["01_params"]["status"] == "ok" and nbs["02_fails"]["status"] == "failed"
    assert nbs["03_after"]["status"] == "not run"
    assert nbs["02_fails"]["parameters"]["corpus_size"] == 7, "per-notebook override reached 02"


@pytest.mark.slow
def test_run_writes_executed_html_and_manifest_with_times(runs):
    out, m = runs["out"], runs["manifest"]
    assert runs["only_out"] == out
    for ext in ("ipynb", "html"):
        assert (out / "executed" / f"01_params.{ext}").stat().st_size > 0
    entry = m["notebooks"]["01_params"]
    assert entry["status"] == "ok" and entry["seconds"] > 0 and entry["started"] and entry["finished"]
    assert entry["executed"] == "executed/01_params.ipynb" and entry["html"] == "executed/01_params.html"
    p = entry["parameters"]
    assert p["corpus_size"] == 4 and p["method"]["alpha"] == 1.0 and p["llm"]["model"] == "from profile"
    assert p["dataset"] == "emoji-voc" and set(p) >= {"method", "llm", "seed"}, "the whole parameter tree"
    written = json.loads((out / "tables" / "params.json").read_text())
    assert written == {"n": 4, "rate": 1.0, "name": "from profile", "flag": True, "profile": "testprof"}
    assert m["status"] == "ok" and m["profile"] == "testprof" and m["overrides"] == {"alpha": 1}
    assert m["packages"]["papermill"] and m["packages"]["lcmc_core"] and "torch" in m["packages"]
    assert {"python", "platform", "cpu_count", "torch_threads", "gpu"} <= set(m["system"])
    assert set(m["git"]) == {"commit", "dirty"}
    assert m["started"] <= m["finished"]


@pytest.mark.slow
def test_only_runs_the_selection_and_merges_the_manifest(runs):
    m, out = runs["manifest"], runs["out"]
    assert m["only"] == ["01"]
    assert m["notebooks"]["02_fails"]["status"] == "failed", "entries of other notebooks are kept"
    assert m["notebooks"]["03_after"]["status"] == "not run"
    assert (out / "figures" / "line.png").stat().st_mtime_ns >= runs["after_failure"]["line_mtime"]
    assert not (out / "executed" / "03_after.ipynb").exists()


@pytest.mark.slow
def test_no_secret_and_no_environment_variable_in_any_produced_file(runs):
    out = runs["out"]
    executed = (out / "executed" / "01_params.ipynb").read_text()
    assert "<redacted>" in executed, "the test notebook printed the key; the runner must have redacted it"
    for path in _files(out):
        data = path.read_bytes()
        assert FAKE_KEY.encode() not in data, f"secret leaked into {path}"
    manifest = (out / "manifest.json").read_text()
    assert MARKER not in manifest and "LCMC_TEST_MARKER" not in manifest
    # the variable's NAME is a parameter (llm.api_key_env); nothing else of the environment is recorded
    assert manifest.count("OPENAI_API_KEY") == manifest.count('"api_key_env": "OPENAI_API_KEY"')
    assert os.environ["PATH"] not in manifest


# --------------------------------------------------------------------------- refused before any start

@pytest.mark.parametrize("overrides, expected", [
    ({"nn": 3}, "unknown parameter 'nn'"),
    ({"corpus_size": "three"}, "expected an integer"),
    ({"corpus_size": 0}, r"corpus_size: expected an integer in \[1, 10000000\]"),
    ({"openai_api_key": "x"}, "looks like a secret"),
])
def test_invalid_parameters_are_refused_before_any_notebook_runs(tmp_path, overrides, expected):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=expected):
        rp.reproduce(_profile(tmp_path), out=out, notebooks_dir=NOTEBOOKS, overrides=overrides, progress=False)
    assert not out.exists(), "nothing may be executed or written"


def test_invalid_profile_key_is_refused_before_any_notebook_runs(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"unknown parameter 'corpus_sise'.*Did you mean 'corpus_size'"):
        rp.reproduce(_profile(tmp_path, "corpus_sise: 1\n"), out=out, notebooks_dir=NOTEBOOKS, progress=False)
    assert not out.exists()


def test_cli_refuses_secret_set_with_exit_code_2(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["reproduce", "--profile", str(_profile(tmp_path)), "--notebooks", str(NOTEBOOKS),
                 "--out", str(out), "--set", "hf_token=abc"])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "secrets come from the environment only" in err and "Traceback" not in err


def test_cli_list_prints_plan_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["reproduce", "--profile", str(_profile(tmp_path)), "--notebooks", str(NOTEBOOKS),
                 "--out", str(out), "--list", "--only", "1,3", "--set", "alpha=0.25"])
    text = capsys.readouterr().out
    assert code == 0 and not out.exists()
    assert "01_params.ipynb" in text and "03_after.ipynb" in text and "02_fails.ipynb" not in text
    assert "method.alpha" in text and "0.25   (--set alpha)" in text and "corpus_size" in text


def test_root_is_a_shortcut_for_data_root(tmp_path, capsys):
    code = main(["reproduce", "--profile", "voc2007", "--root", "/a", "--set", "data_root=/b", "--list"])
    assert code == 2 and "disagree" in capsys.readouterr().err


def test_only_selects_by_number_and_refuses_unknown():
    nbs = rp.discover_notebooks(NOTEBOOKS)
    assert [p.name for p in nbs] == ["01_params.ipynb", "02_fails.ipynb", "03_after.ipynb"]
    assert [p.name for p in rp.select_notebooks(nbs, ["3", "01_params"])] == ["01_params.ipynb", "03_after.ipynb"]
    with pytest.raises(ConfigError, match="there is no notebook 07"):
        rp.select_notebooks(nbs, ["07"])


def test_only_cannot_select_a_skipped_notebook(tmp_path):
    with pytest.raises(ConfigError, match="which profile 'testprof' skips"):
        rp.plan(_profile(tmp_path, 'skip: ["02"]\n'), only=["02"], notebooks_dir=NOTEBOOKS)


def test_git_info_tolerates_no_git(tmp_path):
    assert provenance.git_info(tmp_path) == {"commit": None, "dirty": None}


def _values(**tree):
    from lcmc_core.experiments.params import params_from_tree
    return {Path("01.ipynb"): {"_params": params_from_tree(tree)}}


def test_missing_real_dataset_is_reported_before_any_notebook(tmp_path):
    with pytest.raises(ConfigError) as info:
        rp.check_dataset(_values(dataset="voc2007", data_root=str(tmp_path)))
    msg = str(info.value)
    assert "no notebook was run" in msg and "VOCtest_06-Nov-2007.tar" in msg
    assert str(tmp_path / "VOCdevkit" / "VOC2007" / "JPEGImages") in msg
    assert rp.check_dataset(_values()) is None  # the toy world needs no files


def test_a_complete_real_dataset_passes_the_check(tmp_path):
    from fixtures_datasets import make_coco2014
    fx = make_coco2014(tmp_path)
    info = rp.check_dataset(_values(dataset="coco2014", data_root=str(fx.root)))
    assert info["images"] == info["official_size"] and info["skipped_images"] == 0


def test_notebooks_must_declare_the_injected_parameters(tmp_path):
    import nbformat
    folder = tmp_path / "nbs"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell('profile = ""\nout_dir = ""')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, str(folder / "01_x.ipynb"))
    with pytest.raises(ConfigError, match="01_x.ipynb: its `parameters` cell must declare .*missing: params"):
        rp.reproduce(_profile(tmp_path, ""), out=tmp_path / "out", notebooks_dir=folder, progress=False)


# --------------------------------------------------------------------------- no machine path anywhere

REPO = Path(__file__).resolve().parents[2]


def _machine_paths(*extra: Path) -> list[bytes]:
    """This machine's absolute paths that no produced file may hold: the checkout, the temp and cache folders."""
    import tempfile
    paths = {str(REPO), str(REPO.resolve()), tempfile.gettempdir() + os.sep, os.environ["LCMC_CACHE_DIR"],
             *(str(p) for p in extra)}
    return sorted({p.encode() for p in paths if len(Path(p).parts) > 1})


def _assert_no_machine_path(out: Path, *extra: Path) -> None:
    forbidden = _machine_paths(*extra)
    files = _files(out)
    assert files
    for path in files:
        data = path.read_bytes()
        for p in forbidden:
            assert p not in data, f"{path.relative_to(out)} holds the machine path {p.decode()}"


@pytest.mark.slow
def test_no_machine_path_in_any_produced_file(runs, tmp_path_factory):
    """Manifest, executed notebooks (papermill's out_dir and metadata, the traceback of 02) and HTML."""
    _assert_no_machine_path(runs["out"], tmp_path_factory.getbasetemp())
    m = runs["manifest"]
    assert m["notebooks"]["01_params"]["parameters"] and m["profile_file"].startswith("$TMPDIR/")
    executed = json.loads((runs["out"] / "executed" / "01_params.ipynb").read_text())
    assert executed["metadata"]["papermill"]["input_path"] == "tests/notebooks/01_params.ipynb"
    assert executed["metadata"]["papermill"]["parameters"]["out_dir"] == "$RESULTS_DIR"


PATHS_NOTEBOOK = '''import os, sys, traceback
from pathlib import Path
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import lcmc_core
from lcmc_core.reporting import saving as report
print("cwd", Path.cwd())
print("out_dir", out_dir, report.results_dir(out_dir))
print("cache", os.environ["LCMC_CACHE_DIR"])
print("package", lcmc_core.__file__, "python", sys.executable, "stdlib", os.__file__)
print("precision", pd.get_option("display.precision"))
try:
    report.save_json({}, "a/b", out_dir)
except ValueError:
    traceback.print_exc()'''


@pytest.fixture(scope="module")
def path_run(tmp_path_factory):
    """Notebooks outside any git checkout that print every kind of path, save outputs, then fail in a library call."""
    import nbformat

    tmp = tmp_path_factory.mktemp("paths")
    folder = tmp / "nbs"
    folder.mkdir()
    cells = [("markdown", "# 01 · Paths and outputs"),
             ("params", 'profile = ""\nout_dir = ""\nparams = {}'),
             ("code", PATHS_NOTEBOOK),
             ("code", 'fig, ax = plt.subplots()\nax.plot([0, 1], [1, 0])\nax.set(title="t", xlabel="x", ylabel="y")\n'
                      'report.save_figure(fig, "curve", out_dir, caption="A falling line drawn for the test")\n'
                      'report.save_table(pd.DataFrame({"tau": [0.003, 0.01], "mAP": [80.04, 81.26]}), "sweep", out_dir,'
                      ' caption="A sweep")'),
             ("code", 'report.save_figure(plt.figure(), "bare", out_dir)')]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in cells:
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    nbformat.write(nb, str(folder / "01_paths.ipynb"))
    out = tmp / "results"
    with pytest.raises(rp.NotebookFailed) as failed:
        rp.reproduce(_profile(tmp, ""), out=out, notebooks_dir=folder, progress=False)
    return {"out": out, "tmp": tmp, "error": failed.value,
            "executed": (out / "executed" / "01_paths.ipynb").read_text(),
            "manifest": json.loads((out / "manifest.json").read_text())}


@pytest.mark.slow
def test_printed_paths_and_tracebacks_are_scrubbed(path_run):
    _assert_no_machine_path(path_run["out"], path_run["tmp"], Path.home() / ".cache")
    text = path_run["executed"]
    # outside any git checkout, the notebooks' parent folder stands for the checkout
    assert "cwd nbs" in text and "out_dir results results" in text
    assert "cache $LCMC_CACHE_DIR" in text
    assert "package lcmc_core/__init__.py" in text and "lcmc_core/reporting/saving.py" in text, "the traceback"
    assert "stdlib $PYTHON_" in text
    assert "caption=... is required" in text
    assert str(path_run["tmp"]) in str(path_run["error"]), "the error message on the console keeps real paths"


@pytest.mark.slow
def test_kernels_show_rounded_frames_and_the_manifest_records_outputs_and_cells(path_run):
    m = path_run["manifest"]
    assert "precision 3" in path_run["executed"]
    assert m["kernel_setup"]["exec_lines"] == list(rp.KERNEL_SETUP)
    assert json.loads(path_run["executed"])["metadata"]["lcmc"]["exec_lines"] == list(rp.KERNEL_SETUP)
    entry = m["notebooks"]["01_paths"]
    assert entry["title"] == "Paths and outputs" and entry["status"] == "failed"
    (figure,) = entry["figures"]
    # the cell number a reader finds in the executed copy (counting from 1; papermill's injected cell included)
    cells = json.loads(path_run["executed"])["cells"]
    cell = 1 + next(i for i, c in enumerate(cells) if 'save_figure(fig, "curve"' in "".join(c["source"]))
    assert cells[cell - 1]["cell_type"] == "code" and cell > 3
    assert figure["name"] == "curve" and figure["cell"] == cell
    assert figure["caption"] == "A falling line drawn for the test"
    assert figure["has_title"] and figure["has_labels"] and figure["axes"][0]["xlabel"] == "x"
    (table,) = entry["tables"]
    assert table["name"] == "sweep" and table["cell"] == cell and table["caption"] == "A sweep"
    assert "tau" in (path_run["out"] / "tables" / "sweep.md").read_text()
    readme = (path_run["out"] / "README.md").read_text()
    assert '<img src="figures/curve.png" width="320"' in readme and "A falling line" in readme
    assert f"cell {cell} of the executed `01_paths.ipynb`" in readme and "[sweep](tables/sweep.md)" in readme


@pytest.mark.slow
def test_the_run_writes_a_readme_from_its_manifest(runs):
    readme = (runs["out"] / "README.md").read_text()
    assert "[values](tables/values.md)" in readme and "figures/line.png" in readme
    entry = runs["manifest"]["notebooks"]["01_params"]
    assert [f["name"] for f in entry["figures"]] == ["line"] and [t["name"] for t in entry["tables"]] == ["values"]
    assert [d["name"] for d in entry["data"]] == ["params"]
