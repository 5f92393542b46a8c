"""Figure, table and JSON writers used by the notebooks (lcmc_core.reporting.saving)."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lcmc_core import outputs
from lcmc_core.experiments.profiles import toy_world_caption
from lcmc_core.harness.readme import results_readme
from lcmc_core.reporting import saving as report


def _figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [2, 0, 1], label="a")
    ax.set_title("test " + toy_world_caption("toy"), fontsize=4)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    return fig


def test_results_dir_creates_figures_and_tables(tmp_path):
    out = outputs.results_dir(tmp_path / "r")
    assert out == (tmp_path / "r").absolute()
    assert (out / "figures").is_dir() and (out / "tables").is_dir()


def test_empty_out_dir_means_results_interactive(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert outputs.results_dir("") == tmp_path / "results" / "interactive"
    monkeypatch.chdir(tmp_path)
    assert outputs.results_dir(None) == tmp_path / "results" / "interactive"


def test_save_figure_writes_png_and_pdf_identically_on_rerun(tmp_path):
    fig = _figure()
    paths = report.save_figure(fig, "curve", tmp_path, caption="A test curve of one line.")
    assert [p.name for p in paths] == ["curve.png", "curve.pdf"]
    assert all(p.parent == tmp_path / "figures" and p.stat().st_size > 0 for p in paths)
    first = [p.read_bytes() for p in paths]
    report.save_figure(fig, "curve", tmp_path, caption="A test curve of one line.")
    assert [p.read_bytes() for p in paths] == first, "reruns must give byte-identical PNG and PDF"
    assert b"CreationDate" not in first[1]
    plt.close(fig)


def test_save_figure_dpi_is_150(tmp_path):
    from PIL import Image
    fig = _figure()
    png = report.save_figure(fig, "dpi", tmp_path, formats=("png",), bbox_inches=None, caption="A figure to measure dpi.")[0]
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
    note = toy_world_caption(dataset="emoji-voc")
    assert "Toy world" in note and "not the paper's numbers" in note
    assert toy_world_caption("toy") == note
    assert "smoke" in toy_world_caption("smoke", "emoji-voc")
    assert toy_world_caption("voc2007", "voc2007") == ""
    assert toy_world_caption("custom", "emoji-voc") == note


# --------------------------------------------------------------------------- figures say what they show

def test_save_figure_refuses_a_figure_without_a_caption(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    ax.set(title="a title is not a caption", xlabel="x", ylabel="y")
    for caption in (None, "", "too short"):
        with pytest.raises(ValueError, match=r"save_figure\('bare'\): caption=... is required"):
            report.save_figure(fig, "bare", tmp_path, caption=caption)
    assert not (tmp_path / "figures" / "bare.png").exists()
    plt.close(fig)


def test_save_figure_records_unlabelled_axes_quietly(tmp_path, monkeypatch):
    import warnings

    monkeypatch.setenv(outputs.NOTEBOOK_ENV, "01_x")
    fig, (a, b) = plt.subplots(1, 2)
    a.plot([0, 1], [1, 0])
    a.set(title="left", xlabel="x", ylabel="y")
    b.plot([0, 1], [1, 0])
    b.set_title("right")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing label is recorded, not warned about
        report.save_figure(fig, "pair", tmp_path, formats=("png",), caption="Two panels, the right one without labels.")
    plt.close(fig)
    (record,) = outputs.read_output_records(tmp_path, "01")
    assert record["has_title"] and not record["has_labels"]
    assert [(a["title"], a["has_xlabel"], a["has_ylabel"]) for a in record["axes"]] == [("left", True, True),
                                                                                          ("right", False, False)]


def test_figure_labels_counts_shared_labels_captions_and_image_axes():
    fig, axes = plt.subplots(2, 2, sharex=True, sharey=True)
    for ax in axes.flat:
        ax.plot([0, 1], [0, 1])
    axes[1, 0].set_xlabel("epoch")
    axes[1, 1].set_xlabel("epoch")
    axes[0, 0].set_ylabel("loss")
    axes[1, 0].set_ylabel("loss")
    labels = report.figure_labels(fig)
    assert labels["labelled"] and not labels["titled"] and not labels["has_title"]
    assert report.figure_labels(fig, caption="Training loss.")["titled"]
    plt.close(fig)
    fig, (img, cb_host) = plt.subplots(1, 2)
    img.imshow(np.zeros((4, 4)))
    img.axis("off")
    img.set_title("a scene")
    mappable = cb_host.imshow(np.eye(3))
    cb_host.set(xlabel="class", ylabel="class")
    fig.colorbar(mappable, ax=cb_host)
    labels = report.figure_labels(fig)
    assert len(labels["axes"]) == 2, "the colour bar is not an axes that needs labels"
    assert labels["labelled"] and labels["has_title"] and labels["axes"][0]["axis_drawn"] is False
    plt.close(fig)
    fig, (host, cax) = plt.subplots(1, 2)                 # a colour bar drawn into an axes of the grid
    host.set(xlabel="x", ylabel="y")
    fig.colorbar(host.scatter([0, 1], [0, 1], c=[0, 1]), cax=cax)
    fig.suptitle("points", y=0.98)
    fig.supxlabel("shared x")
    labels = report.figure_labels(fig)
    assert len(labels["axes"]) == 1 and labels["labelled"] and labels["titled"]
    plt.close(fig)


def test_under_the_runner_every_save_is_recorded_with_its_checks(tmp_path, monkeypatch):
    monkeypatch.setenv(outputs.NOTEBOOK_ENV, "05_main_results")
    fig = _figure()
    report.save_figure(fig, "curve", tmp_path, caption="A test curve of one line")
    report.save_figure(fig, "curve", tmp_path, caption="A test curve of one line, again")  # the last save counts
    report.save_table(pd.DataFrame({"a": [1, 2]}), "t", tmp_path, caption="numbers")
    report.save_json({"x": 1}, "j", tmp_path)
    plt.close(fig)
    records = outputs.read_output_records(tmp_path, "05")
    assert [(r["kind"], r["name"]) for r in records] == [("figure", "curve"), ("table", "t"), ("json", "j")]
    figure = records[0]
    assert figure["caption"] == "A test curve of one line, again"
    assert figure["files"] == ["figures/curve.png", "figures/curve.pdf"]
    assert figure["has_title"] and figure["has_labels"] and figure["has_caption"]
    assert figure["axes"][0]["xlabel"] == "x" and figure["axes"][0]["ylabel"] == "y"
    assert records[1]["files"] == ["tables/t.csv", "tables/t.md", "tables/t.tex"] and records[1]["caption"] == "numbers"
    monkeypatch.delenv(outputs.NOTEBOOK_ENV)
    report.save_json({"x": 2}, "k", tmp_path)
    assert len(outputs.read_output_records(tmp_path, "05")) == 3, "outside the runner nothing is recorded"


# --------------------------------------------------------------------------- tables formatted per column

def test_distinct_settings_never_render_alike_and_integers_print_as_integers(tmp_path):
    df = pd.DataFrame({"noise_std": [0.0, 0.05, 0.1, 0.2],
                       "tau": [0.003, 0.01, 0.003, 0.01],
                       "lr": [1e-05, 0.001, 0.0009938441702975688, 0.00099384417],
                       "setting": [0.25, 0.3, 0.35, 0.4],          # no known name: kept distinct all the same
                       "images": [214.0, 157.0, 362.0, 1000.0],    # integral floats
                       "count": [214, 157, 362, 1000],
                       "mAP": [83.30399988407126, 83.35998112284054, 83.50712580911264, 83.60554749038977]})
    report.save_table(df, "sweep", tmp_path, float_format="%.1f")
    text, numeric = report.format_table(df, "%.1f")
    assert all(numeric)
    for col in ("noise_std", "tau", "lr", "setting"):
        pairs = set(zip(df[col], text[col]))
        assert len({v for _, v in pairs}) == df[col].nunique(), f"{col}: distinct values render alike: {pairs}"
    assert list(text["noise_std"]) == ["0", "0.05", "0.1", "0.2"]
    assert list(text["tau"]) == ["0.003", "0.01", "0.003", "0.01"]
    assert list(text["images"]) == ["214", "157", "362", "1000"] and list(text["count"]) == list(text["images"])
    assert list(text["mAP"]) == ["83.3", "83.4", "83.5", "83.6"], "measurements keep the table's float_format"
    md = (tmp_path / "tables" / "sweep.md").read_text()
    tex = (tmp_path / "tables" / "sweep.tex").read_text()
    for out in (md, tex):
        assert "214.0" not in out and " 214 " in out and "0.05" in out and "0.003" in out
    assert [row.split("|")[1].strip() for row in md.splitlines()[2:]] == ["0", "0.05", "0.1", "0.2"]
    csv = (tmp_path / "tables" / "sweep.csv").read_text()
    assert "0.0009938441702975688" in csv and "83.30399988407126" in csv, "the CSV keeps full precision"


def test_table_index_and_key_columns_use_g_and_missing_values_print_empty(tmp_path):
    sweep = pd.DataFrame({"alpha": [0.1, 0.1, 0.15], "temperature": [0.003, 0.01, 0.003],
                          "mAP": [83.16, 84.1, float("nan")]}).set_index(["alpha", "temperature"])
    text, _ = report.format_table(sweep, "%.2f")
    assert list(text.columns) == ["alpha", "temperature", "mAP"]
    assert list(text["alpha"]) == ["0.1", "0.1", "0.15"] and list(text["mAP"]) == ["83.16", "84.10", ""]
    mixed = pd.DataFrame({"item": ["status", "requested", "cost"], "value": ["complete", 20000, 0.0125]})
    text, numeric = report.format_table(mixed)
    assert list(text["value"]) == ["complete", "20000", "0.0125"] and numeric == [False, False]
    chosen = pd.DataFrame({"k": [0.05, 0.1], "m": [1.25, 2.5]})
    assert list(report.format_table(chosen, "%.1f", keys=["m"])[0]["m"]) == ["1.25", "2.5"]


# --------------------------------------------------------------------------- the results README

def test_results_readme_lists_figures_with_captions_cells_and_tables_in_reading_order():
    manifest = {"profile": "toy", "status": "ok", "finished": "2026-01-01T00:00:00+00:00",
                "git": {"commit": "abcdef1234567890", "dirty": False},
                "notebooks": {
                    "00_toy_world": {"status": "ok", "title": "The toy world", "notebook": "notebooks/00_toy_world.ipynb",
                                     "executed": "executed/00_toy_world.ipynb", "seconds": 3.0,
                                     "figures": [], "tables": [], "data": []},
                    "05_main_results": {"status": "ok", "title": "Main results", "notebook": "notebooks/05_main_results.ipynb",
                                        "executed": "executed/05_main_results.ipynb",
                                        "html": "executed/05_main_results.html", "seconds": 12.0,
                                        "figures": [{"name": "05_main_results",
                                                     "files": ["figures/05_main_results.png", "figures/05_main_results.pdf"],
                                                     "caption": "mAP of every method", "title": "Main", "cell": 7,
                                                     "has_title": True, "has_caption": True, "has_labels": True}],
                                        "tables": [{"name": "05_main_results",
                                                    "files": ["tables/05_main_results.csv", "tables/05_main_results.md",
                                                              "tables/05_main_results.tex"],
                                                    "caption": "Main table", "cell": 6}],
                                        "data": []}}}
    text = results_readme(manifest, checkout="../..")
    assert text.startswith("# Results of the `toy` profile")
    order = text.split("## Reading order", 1)[1]
    assert order.index("05_main_results") < order.index("00_toy_world"), "05 comes first for readers"
    assert '<img src="figures/05_main_results.png" width="320"' in text
    assert "**05_main_results**: mAP of every method. Made by cell 7 of the executed `05_main_results.ipynb`." in text
    manifest["notebooks"]["05_main_results"]["figures"][0]["caption"] = "A caption that ends a sentence."
    assert "A caption that ends a sentence. Made by" in results_readme(manifest), "never '..'"
    manifest["notebooks"]["05_main_results"]["figures"][0]["caption"] = "mAP of every method"
    assert "[05_main_results](tables/05_main_results.md) ([csv](tables/05_main_results.csv), " \
           "[tex](tables/05_main_results.tex)) (cell 6): Main table" in text
    assert "[notebook](../../notebooks/05_main_results.ipynb)" in text and "commit `abcdef123456`" in text
    assert "Toy world" in text and "python -m lcmc_core verify --profile toy" in text
    # the notebooks' ../README.md#glossary, followed from executed/, lands on a section that forwards it
    assert "## Glossary" in text and "(../../README.md#glossary)" in text
    assert "## Glossary" not in results_readme(manifest), "no checkout, no link to forward to"
