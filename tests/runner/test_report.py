"""Figure, table and JSON writers used by the notebooks (lcmc_core.runner.report)."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lcmc_core.runner import report


def _figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [2, 0, 1], label="a")
    ax.set_title("test " + report.toy_world_caption("toy"), fontsize=4)
    ax.legend()
    return fig


def test_results_dir_creates_figures_and_tables(tmp_path):
    out = report.results_dir(tmp_path / "r")
    assert out == (tmp_path / "r").absolute()
    assert (out / "figures").is_dir() and (out / "tables").is_dir()


def test_empty_out_dir_means_results_interactive(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert report.results_dir("") == tmp_path / "results" / "interactive"
    monkeypatch.chdir(tmp_path)
    assert report.results_dir(None) == tmp_path / "results" / "interactive"


def test_save_figure_writes_png_and_pdf_identically_on_rerun(tmp_path):
    fig = _figure()
    paths = report.save_figure(fig, "curve", tmp_path)
    assert [p.name for p in paths] == ["curve.png", "curve.pdf"]
    assert all(p.parent == tmp_path / "figures" and p.stat().st_size > 0 for p in paths)
    first = [p.read_bytes() for p in paths]
    report.save_figure(fig, "curve", tmp_path)
    assert [p.read_bytes() for p in paths] == first, "reruns must give byte-identical PNG and PDF"
    assert b"CreationDate" not in first[1]
    plt.close(fig)


def test_save_figure_dpi_is_150(tmp_path):
    from PIL import Image
    fig = _figure()
    png = report.save_figure(fig, "dpi", tmp_path, formats=("png",), bbox_inches=None)[0]
    with Image.open(png) as im:
        assert im.size == (450, 300)
    plt.close(fig)


@pytest.mark.parametrize("name", ["a/b", "../x", "", ".", "x y"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="plain file name"):
        report.save_json({}, name, tmp_path)


def test_save_table_writes_csv_markdown_and_latex(tmp_path):
    df = pd.DataFrame({"method": ["zero_shot", "CoMC 100%"], "mAP": [81.234, 79.0]})
    paths = report.save_table(df, "main", tmp_path, caption="mAP & friends")
    assert [p.name for p in paths] == ["main.csv", "main.md", "main.tex"]
    csv = (tmp_path / "tables" / "main.csv").read_text()
    assert "81.234" in csv and csv.startswith("method,mAP"), "CSV keeps full precision and no RangeIndex"
    md = (tmp_path / "tables" / "main.md").read_text()
    assert md.startswith("mAP & friends\n\n|") and "81.2 |" in md and "81.23" not in md
    tex = (tmp_path / "tables" / "main.tex").read_text()
    assert r"\caption{mAP \& friends}" in tex and r"\label{tab:main}" in tex
    assert r"zero\_shot" in tex and r"CoMC 100\%" in tex and "81.2 " in tex


def test_save_table_keeps_a_named_index_and_float_format(tmp_path):
    df = pd.DataFrame({"mAP": [0.12345]}, index=pd.Index(["voc"], name="dataset"))
    report.save_table(df, "t", tmp_path, float_format="%.3f")
    assert (tmp_path / "tables" / "t.csv").read_text().startswith("dataset,mAP")
    assert "0.123" in (tmp_path / "tables" / "t.md").read_text()
    with pytest.raises(ValueError, match="printf format"):
        report.save_table(df, "t", tmp_path, float_format="{:.1f}")


def test_save_json_converts_numpy_and_nan(tmp_path):
    path = report.save_json({"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": {1: (2, 3)},
                             "p": tmp_path}, "metrics", tmp_path)
    assert path == tmp_path / "tables" / "metrics.json"
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": {"1": [2, 3]},
                                            "p": str(tmp_path)}
    with pytest.raises(TypeError, match="cannot write a object"):
        report.save_json({"x": object()}, "bad", tmp_path)


def test_toy_world_caption():
    note = report.toy_world_caption(dataset="emoji-voc")
    assert "Toy world" in note and "not the paper's numbers" in note
    assert report.toy_world_caption("toy") == note
    assert "smoke" in report.toy_world_caption("smoke", "emoji-voc")
    assert report.toy_world_caption("voc2007", "voc2007") == ""
    assert report.toy_world_caption("custom", "emoji-voc") == note
