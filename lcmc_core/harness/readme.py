"""The results folder's README (``results/<profile>/README.md``), written from the run's manifest.

Every figure (thumbnail, caption, the notebook and cell that made it) and table (link and caption)
of a run, notebook by notebook in :data:`READING_ORDER`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..experiments.profiles import TOY_PROFILES, toy_world_caption

__all__ = ["READING_ORDER", "results_readme"]

#: The order in which a reader meets the notebooks: the main result first, then what explains it,
#: then how its ingredients are made (notebook numbers; others follow in number order).
READING_ORDER = (
    ("05", "the main comparison: every method's mAP, CF1 and OF1, per-class AP"),
    ("04", "what the mapping's settings, memory, branches, noise, corpus size and loss change"),
    ("03", "the modality gap, before and after the cross-modal mapping"),
    ("02", "training the text-only classifier, and its noise injection"),
    ("01", "the training corpus: how it is generated, and its label statistics"),
    ("00", "the toy world and the toy CLIPs (toy profiles)"),
)
THUMBNAIL_WIDTH = 320


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def results_readme(manifest: Mapping[str, Any], checkout: str | None = None, title: str | None = None) -> str:
    """``results/<profile>/README.md``: every figure (thumbnail, caption, the notebook and cell that made it)
    and table (link and caption) of a run, notebook by notebook in :data:`READING_ORDER`.

    ``checkout``: the checkout's path relative to the results folder (``../..``), for links to the
    source notebooks (none without it).
    """
    profile = manifest.get("profile", "?")
    notebooks = manifest.get("notebooks") or {}
    order = {num: i for i, (num, _) in enumerate(READING_ORDER)}
    about = dict(READING_ORDER)
    names = sorted(notebooks, key=lambda n: (order.get(n[:2], len(order)), n))
    git = manifest.get("git") or {}
    commit = (git.get("commit") or "")[:12]
    lines = [f"# {title or f'Results of the `{profile}` profile'}", "",
             f"Written by `python -m lcmc_core reproduce --profile {profile}` from [`manifest.json`](manifest.json) "
             f"(run status **{manifest.get('status', '?')}**" + (f", finished {manifest['finished']}" if manifest.get(
                 "finished") else "") + (f", commit `{commit}`" + (" with uncommitted changes" if git.get("dirty") else "")
                                         if commit else "") + "). Do not edit it by hand: a rerun rewrites it.", ""]
    note = toy_world_caption(profile) if profile in TOY_PROFILES else ""
    if note:
        lines += [f"> {note}.", ""]
    lines += [f"Check a rerun against these results: `python -m lcmc_core verify --profile {profile}` (cell by cell, "
              f"for a rerun on the same machine) or `--conclusions` (on another machine: numbers within the measured "
              f"cross-machine tolerances, verdicts and rankings as conclusions).", "", "## Reading order", ""]
    for i, name in enumerate(names, 1):
        entry = notebooks[name]
        what = entry["title"] if "title" in entry else about.get(name[:2], "")
        lines.append(f"{i}. [{name}](#{_anchor(name)})" + (f": {_md_escape(what)}" if what else "")
                     + (f" ({entry.get('status')})" if entry.get("status") not in (None, "ok") else ""))
    lines.append("")
    for name in names:
        entry = notebooks[name]
        lines += [f"## {name}", ""]
        links = [f"[notebook]({checkout.rstrip('/')}/{entry['notebook']})"] if checkout and entry.get("notebook") else []
        if entry.get("executed"):
            links.append(f"[executed]({entry['executed']})")
        if entry.get("html"):
            links.append(f"[HTML]({entry['html']})")
        secs = entry.get("seconds")
        lines += [" · ".join(links) + f" · status {entry.get('status', '?')}"
                  + (f", {secs:.0f} s" if isinstance(secs, (int, float)) else ""), ""]
        figures, tables = entry.get("figures") or [], entry.get("tables") or []
        if entry.get("status") in ("not run", "pending"):
            lines += [f"(not run{': ' + _md_escape(entry['note']) if entry.get('note') else ''})", ""]
            continue
        if "figures" not in entry and "tables" not in entry:
            lines += ["(this entry predates recorded outputs: rerun the notebook to list its figures and tables)", ""]
            continue
        for fig in figures:
            files = fig.get("files") or []
            png = next((f for f in files if f.endswith(".png")), files[0] if files else "")
            caption = fig.get("caption") or (fig.get("title") or fig["name"]).split("\n")[0]
            where = (f"cell {fig['cell']} of the executed `{name}.ipynb`" if fig.get("cell") is not None
                     else f"`{name}.ipynb`")
            others = " ".join(f"[{Path(f).suffix[1:]}]({f})" for f in files if f != png)
            flags = "" if fig.get("has_labels", True) and (fig.get("has_title") or fig.get("has_caption", True)) \
                else " (some axes lack labels or a title)"
            lines += [f'<a href="{png}"><img src="{png}" width="{THUMBNAIL_WIDTH}" alt="{fig["name"]}"></a>', "",
                      f"**{fig['name']}**: {_md_escape(caption).rstrip('.')}. Made by {where}. {others}{flags}".rstrip(), ""]
        if tables:
            lines += ["Tables:", ""]
            for tab in tables:
                files = tab.get("files") or []
                md = next((f for f in files if f.endswith(".md")), files[0] if files else "")
                others = ", ".join(f"[{Path(f).suffix[1:]}]({f})" for f in files if f != md)
                caption = tab.get("caption") or ""
                where = f" (cell {tab['cell']})" if tab.get("cell") is not None else ""
                lines.append(f"- [{tab['name']}]({md})" + (f" ({others})" if others else "") + where
                             + (f": {_md_escape(caption)}" if caption else ""))
            lines.append("")
        data = entry.get("data") or []
        if data:
            lines += ["Data: " + ", ".join(f"[{d['name']}]({(d.get('files') or [''])[0]})" for d in data), ""]
    if checkout:
        # the notebooks link ``../README.md#glossary``: from ``executed/`` that lands here, so forward it
        lines += ["## Glossary", "", "Abbreviations (CoMC, local branch, C3, I0T, SPARC, DeCap, TaI-DPT, CF1/OF1, "
                  f"ASL, InfoNCE, ...) are expanded, with citations, in the [project README's glossary]"
                  f"({checkout.rstrip('/')}/README.md#glossary).", ""]
    return "\n".join(lines).rstrip() + "\n"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
