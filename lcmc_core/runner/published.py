"""Published mAP numbers to compare against (CLIP ResNet-50 unless noted), with their sources.

From the method notes (``shared/method-notes.md``): the CoMC paper's own table could not be
retrieved, and its released code covers COCO only, so the CoMC row is the released checkpoint as
re-run by SPARC. None of these numbers is ever drawn from the toy world.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["PUBLISHED_MAP", "published_table"]

# method, kind, {dataset: mAP}, source, our row under the same protocol (None: none here)
PUBLISHED_MAP = [
    ("CLIP zero-shot, 80-template ensemble", "training-free",
     {"voc2007": 79.7, "coco2014": 53.0, "nuswide": 38.5}, "SPARC (CVPR 2025) Table 2",
     "zero-shot CLIP [published: encode_image, 80 OpenAI templates]"),
    ("CLIP + local features (DPT-style)", "training-free",
     {"voc2007": 82.6, "coco2014": 57.1, "nuswide": 38.1}, "SPARC Table 3",
     "zero-shot CLIP + local [official ZeroshotCLIP_dense]"),
    ("TaI-DPT (CVPR 2023), 3 seeds", "text-only prompt tuning",
     {"voc2007": 88.5, "coco2014": 65.1, "nuswide": 46.2}, "SPARC Table 5", "TaI-DPT"),
    ("CoMC released checkpoint (1 seed)", "text-only classifier",
     {"coco2014": 68.8}, "SPARC Table 5 (re-run)", "CoMC, official protocol (selects epoch on test images)"),
    ("SPARC", "training-free", {"voc2007": 89.2, "coco2014": 65.7, "nuswide": 45.8}, "SPARC Tables 2-5", None),
    ("TagCLIP, ViT-B/16", "training-free", {"voc2007": 92.8, "coco2014": 68.8}, "TagCLIP README", None),
]


def published_table(dataset: str | None = None) -> pd.DataFrame:
    """Published mAP (percent) per method; one dataset's column, or all three, with the source and our matching row."""
    datasets = ("voc2007", "coco2014", "nuswide")
    if dataset is not None and dataset not in datasets:
        raise KeyError(f"published_table: no published numbers for dataset {dataset!r}; expected one of {datasets}")
    rows = []
    for method, kind, maps, source, ours in PUBLISHED_MAP:
        row = {"method": method, "kind": kind}
        for d in ([dataset] if dataset else datasets):
            row[d if dataset is None else "published mAP"] = maps.get(d)
        row["source"] = source
        row["our row (same protocol)"] = ours or ""
        rows.append(row)
    table = pd.DataFrame(rows).set_index("method")
    return table.dropna(subset=["published mAP"]) if dataset else table
