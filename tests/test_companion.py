"""The companion's basics: licence, citation, changelog, ignored results, the cache folder, and the committed results.

Cheap checks on files a reader meets first; the last tests read the committed ``results/toy``
manifest (and skip, saying why, when it predates what they check).
"""
import json
import logging
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> str:
    return (ROOT / "pyproject.toml").read_text()


def test_license_is_mit_as_pyproject_declares():
    assert re.search(r'^license\s*=\s*"MIT"', _pyproject(), re.M)
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the lcmc authors" in text
    assert "Permission is hereby granted, free of charge" in text


def test_citation_cff_cites_this_companion_and_prefers_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["license"] == "MIT"
    version = re.search(r'^version\s*=\s*"([^"]+)"', _pyproject(), re.M).group(1)
    assert str(cff["version"]) == version, "CITATION.cff carries the package's version"
    paper = cff["preferred-citation"]
    assert paper["title"] == "Language-Driven Cross-Modal Classifier for Zero-Shot Multi-Label Image Recognition"
    assert [a["family-names"] for a in paper["authors"]] == ["Liu", "Wen", "Liu", "Fang", "Li", "Xu", "Zhang"]
    assert (paper["volume"], paper["start"], paper["end"], paper["year"]) == (235, 32173, 32183, 2024)
    assert paper["url"].startswith("https://proceedings.mlr.press/v235/")
    assert any(r.get("url") == "https://github.com/yic20/CoMC" for r in cff["references"])


def test_readme_ends_with_a_citing_section_with_bibtex_and_links():
    readme = (ROOT / "README.md").read_text()
    assert "## Citing" in readme
    citing = readme.split("## Citing", 1)[1]
    assert "## " not in citing.replace("### ", ""), "Citing is the last section"
    assert "@inproceedings{" in citing.lower() and "volume    = {235}" in citing and "pages     = {32173--32183}" in citing
    assert "@software{" in citing and "https://proceedings.mlr.press/v235/" in citing
    assert "https://github.com/yic20/CoMC" in citing and "CITATION.cff" in citing
    assert "## Checking a rerun" in readme and "python -m lcmc_core verify --profile toy" in readme


def test_changelog_says_when_and_why_the_committed_results_changed():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## Unreleased" in text and "regenerated" in text
    log = subprocess.run(["git", "-C", str(ROOT), "log", "--format=%h", "--", "results/"], capture_output=True, text=True)
    if log.returncode != 0 or not log.stdout.strip():
        pytest.skip("no git history of results/ here (not a clone)")
    commits = log.stdout.split()
    mentioned = [c for c in commits if c[:7] in text]
    assert mentioned, f"CHANGELOG.md names none of the commits that changed results/ ({', '.join(commits)})"


def _git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


def test_gitignore_keeps_ad_hoc_results_out_and_nothing_committed_in():
    if _git("rev-parse", "--show-toplevel").returncode != 0:
        pytest.skip("not a git checkout")
    committed_but_ignored = _git("ls-files", "--cached", "--ignored", "--exclude-standard").stdout.split()
    assert committed_but_ignored == [], f"committed files the .gitignore would ignore: {committed_but_ignored[:5]}"
    paths = ["results/interactive/figures/a.png", "results/toy-5k/manifest.json", "results/toy/status/01.json",
             "results/toy/figures/x.png", "results/study/tables/x.csv"]
    ignored = set(_git("check-ignore", "--no-index", *paths).stdout.split())
    assert ignored == {"results/interactive/figures/a.png", "results/toy-5k/manifest.json", "results/toy/status/01.json"}


# --------------------------------------------------------------------------- the cache folder

def _makefile_cache_dir() -> str:
    m = re.search(r"^export LCMC_CACHE_DIR \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, "the Makefile sets LCMC_CACHE_DIR"
    return m.group(1).strip()


def test_default_cache_dir_is_the_makefiles_in_a_checkout():
    from lcmc_core import cache

    assert _makefile_cache_dir() == "$(CURDIR)/.cache/lcmc"
    assert cache.source_checkout() == ROOT
    assert cache.default_cache_dir() == ROOT / ".cache" / "lcmc"  # $(CURDIR) is the checkout for make


def test_outside_a_checkout_the_user_cache_dir_is_used(tmp_path, monkeypatch):
    from lcmc_core import cache

    installed = tmp_path / "site-packages"
    (installed / "lcmc_core").mkdir(parents=True)
    (installed / "lcmc_core" / "__init__.py").write_text("")
    monkeypatch.setattr(cache, "_CHECKOUT", installed)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.source_checkout() is None
    assert cache.default_cache_dir() == tmp_path / "xdg" / "lcmc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.default_cache_dir() == Path.home() / ".cache" / "lcmc"
    other = tmp_path / "other-project"
    other.mkdir()
    (other / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    (other / "lcmc_core").mkdir()
    (other / "lcmc_core" / "__init__.py").write_text("")
    assert cache.source_checkout(other) is None, "a pyproject.toml of another project is no checkout of lcmc"


def test_lcmc_cache_dir_overrides_the_default(tmp_path, monkeypatch):
    from lcmc_core import cache

    monkeypatch.setenv("LCMC_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("LCMC_CACHE_DIR")
    monkeypatch.setattr(cache, "default_cache_dir", lambda: tmp_path / "d")
    assert cache.cache_dir() == tmp_path / "d"


# --------------------------------------------------------------------------- determinism and warnings

def test_toy_clip_pretraining_pins_the_thread_count(monkeypatch):
    import torch

    from lcmc_core.images import toyclip

    seen = {}

    def fake(*args):
        seen["threads"] = torch.get_num_threads()
        return Path("x")

    monkeypatch.setattr(toyclip, "_train_pinned", fake)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        toyclip._train(None, None, None, False, False)
        assert seen["threads"] == toyclip.TRAIN_THREADS == 2
        assert torch.get_num_threads() == 1, "the caller's thread count is restored"
    finally:
        torch.set_num_threads(before)


def test_building_a_random_toy_clip_logs_no_random_init_warning_and_leaves_logging_alone(caplog):
    from lcmc_core.images.models import load_clip

    root = logging.getLogger()
    handlers, filters = list(root.handlers), list(root.filters)
    with caplog.at_level(logging.INFO):
        load_clip("lcmc-toy-rn", pretrained=None)
        logging.getLogger().warning("lcmc test: other warnings still show")
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "initialized randomly" in m], messages
    assert "lcmc test: other warnings still show" in messages, "only open_clip's random-init record is dropped"
    assert (root.handlers, root.filters) == (handlers, filters), "no handler or filter outlives load_clip"


def test_open_clip_installs_no_root_handler_through_load_clip():
    import subprocess
    import sys
    code = ("import logging\nfrom lcmc_core.images.models import load_clip\n"
            "load_clip('lcmc-toy-rn', pretrained=None)\nprint(len(logging.getLogger().handlers))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "0" and "initialized randomly" not in r.stderr


# --------------------------------------------------------------------------- the committed results

def _committed_manifest(profile: str = "toy") -> dict:
    path = ROOT / "results" / profile / "manifest.json"
    if not path.is_file():
        pytest.skip(f"no committed results/{profile}/manifest.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("profile", ["toy", "study"])
def test_every_committed_figure_has_a_caption_and_axis_labels(profile):
    manifest = _committed_manifest(profile)
    entries = manifest["notebooks"]
    problems = []
    for name, entry in entries.items():
        for fig in entry.get("figures", []):
            if not fig.get("has_caption") or len(fig.get("caption", "")) < 20:
                problems.append(f"{name}: {fig['name']} has no caption saying what it shows")
            for i, ax in enumerate(fig.get("axes", [])):
                if not (ax["has_xlabel"] and ax["has_ylabel"]):
                    problems.append(f"{name}: {fig['name']} axes {i} ({ax['title'] or 'untitled'}) lacks "
                                    + " and ".join(w for w, ok in (("an x label", ax["has_xlabel"]),
                                                                   ("a y label", ax["has_ylabel"])) if not ok))
        assert entry.get("figures") is not None or entry.get("status") != "ok", f"{name}: no figure records"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("profile", ["toy", "study"])
def test_every_committed_result_file_is_listed_by_its_manifest(profile):
    """No orphan: each committed figure, table or data file was written by the run the manifest records."""
    manifest = _committed_manifest(profile)
    tracked = _git("ls-files", f"results/{profile}")
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    listed = {f"results/{profile}/{f}" for e in manifest["notebooks"].values() if isinstance(e, dict)
              for kind in ("figures", "tables", "data") for o in (e.get(kind) or []) for f in o.get("files", [])}
    listed |= {f"results/{profile}/{e[k]}" for e in manifest["notebooks"].values() for k in ("executed", "html")
               if e.get(k)}
    listed |= {f"results/{profile}/{f}" for f in ("manifest.json", "README.md", "tables/toy_clip_metrics.json",
                                                  "skipped_images.tsv")}
    orphans = [f for f in tracked.stdout.split() if f not in listed]
    assert not orphans, f"committed files no manifest entry lists (stale?): {orphans[:10]}"


def test_committed_results_name_no_machine_path():
    manifest = _committed_manifest()
    if manifest.get("manifest_version", 0) < 3:
        pytest.skip("the committed results/toy predate path scrubbing (manifest version < 3); regenerate them")
    tracked = _git("ls-files", "results/toy")
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: cannot tell committed files from local scratch (corpus/, status/)")
    text_files = [ROOT / f for f in tracked.stdout.split()
                  if Path(f).suffix in (".json", ".ipynb", ".html", ".md", ".csv", ".tex") and (ROOT / f).is_file()]
    pattern = re.compile(r"(?<![\w.$~])/(?:home|root|Users|tmp|work|private|var/folders)/[\w.-]+")
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in text_files
            for m in pattern.finditer(p.read_text(encoding="utf-8", errors="replace"))]
    assert not hits, "\n".join(hits[:10])


def test_committed_results_have_a_readme():
    manifest = _committed_manifest()
    if manifest.get("manifest_version", 0) < 3:
        pytest.skip("the committed results/toy predate the generated README (manifest version < 3)")
    readme = (ROOT / "results" / "toy" / "README.md").read_text()
    assert "## Reading order" in readme and readme.index("05_main_results") < readme.index("00_toy_world")
