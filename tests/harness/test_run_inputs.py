"""Every input a run turns into a path or a device is checked before the first notebook: nothing escapes, nothing is lost."""
import json
import os
from pathlib import Path

import nbformat
import pytest

from lcmc_core.__main__ import main
from lcmc_core.errors import ConfigError
from lcmc_core.experiments.profiles import load_profile
from lcmc_core.harness import reproduce as rp

REPO = Path(__file__).resolve().parents[2]


def _notebooks(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = ""\nout_dir = ""\nparams = {}')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print('ran')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "01_tiny.ipynb")
    return folder


def _run(args, capsys) -> tuple[int, str]:
    code = main(["reproduce", "--no-progress", *args])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("stem", ["..", ".", ".hidden", "a b", "x$y"])
def test_a_profile_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, capsys, stem):
    (tmp_path / f"{stem}.yaml").write_text("extends: smoke\n")
    with pytest.raises(ConfigError, match="names the results folder"):
        load_profile(tmp_path / f"{stem}.yaml")
    code, err = _run(["--profile", str(tmp_path / f"{stem}.yaml"), "--notebooks", str(_notebooks(tmp_path / "nbs"))],
                     capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "names the results folder" in err


def test_the_three_dots_profile_cannot_write_into_the_checkout(tmp_path, capsys, monkeypatch):
    """The reported case: a profile file named '...yaml' put the results at results/.., the checkout root."""
    checkout = tmp_path / "checkout"
    (checkout / "results").mkdir(parents=True)
    (checkout / "README.md").write_text("the project's README\n")
    (checkout / "...yaml").write_text("extends: smoke\n")
    monkeypatch.chdir(checkout)
    code, err = _run(["--profile", "...yaml", "--notebooks", str(_notebooks(tmp_path / "nbs"))], capsys)
    assert code == 2 and "names the results folder" in err
    assert (checkout / "README.md").read_text() == "the project's README\n"
    assert sorted(p.name for p in checkout.iterdir()) == ["...yaml", "README.md", "results"]


@pytest.mark.parametrize("where", ["checkout", "notebooks", "parent"])
def test_out_may_not_hold_the_checkout_or_the_notebooks(tmp_path, capsys, where):
    notebooks = _notebooks(tmp_path / "project" / "notebooks")
    out = {"checkout": REPO, "notebooks": notebooks, "parent": REPO.parent}[where]
    before = sorted(p.name for p in Path(out).iterdir())
    code, err = _run(["--profile", "smoke", "--notebooks", str(notebooks), "--out", str(out)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "give --out a folder of its own" in err
    assert sorted(p.name for p in Path(out).iterdir()) == before


def test_out_that_is_a_file_or_another_folder_or_empty_is_refused(tmp_path, capsys):
    notebooks = _notebooks(tmp_path / "nbs")
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me\n")
    code, err = _run(["--profile", "smoke", "--notebooks", str(notebooks), "--out", str(a_file)], capsys)
    assert code == 2 and "is a file, not a folder" in err and a_file.read_text() == "keep me\n"
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"\xff\xd8")
    code, err = _run(["--profile", "smoke", "--notebooks", str(notebooks), "--out", str(other)], capsys)
    assert code == 2 and "already holds other files (holiday.jpg)" in err
    assert sorted(p.name for p in other.iterdir()) == ["holiday.jpg"]
    code, err = _run(["--profile", "smoke", "--notebooks", str(notebooks), "--out", ""], capsys)
    assert code == 2 and "--out '': expected the path of a results folder" in err


def test_an_unwritable_results_folder_is_one_line(tmp_path, capsys, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    code, err = _run(["--profile", "smoke", "--notebooks", str(_notebooks(tmp_path / "nbs")), "--out",
                      str(tmp_path / "out")], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "cannot be written (Read-only file system)" in err


def test_a_device_this_machine_lacks_is_refused_before_any_notebook(tmp_path, capsys):
    import torch
    if torch.cuda.device_count() > 3:
        pytest.skip("this machine has a fourth GPU")
    out = tmp_path / "out"
    code, err = _run(["--profile", "smoke", "--notebooks", str(_notebooks(tmp_path / "nbs")), "--out", str(out),
                      "--set", "device=cuda:3"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "device='cuda:3': this machine has" in err
    assert not (out / "manifest.json").exists()


def test_a_missing_weights_file_and_an_empty_tag_are_refused(tmp_path, capsys):
    nbs = str(_notebooks(tmp_path / "nbs"))
    code, err = _run(["--profile", "smoke", "--notebooks", nbs, "--out", str(tmp_path / "o1"),
                      "--set", f"clip_pretrained={tmp_path / 'RN50.pt'}"], capsys)
    assert code == 2 and "no such weights file" in err
    code, err = _run(["--profile", "smoke", "--notebooks", nbs, "--out", str(tmp_path / "o2"),
                      "--set", "clip_pretrained="], capsys)
    assert code == 2 and "clip_pretrained: expected an open_clip tag" in err and "empty value" in err


def test_a_relative_cache_folder_is_resolved_once_for_every_kernel(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LCMC_CACHE_DIR", "relative-cache")
    rp._absolute_cache_env()
    assert os.environ["LCMC_CACHE_DIR"] == str(tmp_path / "relative-cache")


@pytest.mark.parametrize("profile, match", [
    ("extends: smoke\nrequired: [bogus]\n", "unknown parameter 'bogus'"),
    ("extends: smoke\nalpha: 1\nmethod: {alpha: 0.2}\n", "'method.alpha' is given twice"),
    ("extends: smoke\nn_boot: 5\nevaluation.n_boot: 6\n", "'evaluation.n_boot' is given twice"),
])
def test_profile_mistakes_are_named(tmp_path, capsys, profile, match):
    path = tmp_path / "mine.yaml"
    path.write_text(profile)
    with pytest.raises(ConfigError, match=match):
        load_profile(path)


def test_a_dotted_required_key_is_checked(tmp_path, capsys):
    path = tmp_path / "needs-model.yaml"
    path.write_text("extends: smoke\nrequired: [llm.model]\n")
    nbs = str(_notebooks(tmp_path / "nbs"))
    code, err = _run(["--profile", str(path), "--notebooks", nbs, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "needs 'llm.model'" in err


def test_the_run_records_the_environment_against_the_lock(tmp_path):
    out = rp.reproduce("smoke", notebooks_dir=_notebooks(tmp_path / "nbs"), out=tmp_path / "out", progress=False)
    env = json.loads((out / "manifest.json").read_text())["environment"]
    assert env["lock"] == "requirements.lock" and len(env["lock_sha256"]) == 64
    assert isinstance(env["differs_from_lock"], list)
