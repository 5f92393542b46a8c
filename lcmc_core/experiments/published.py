"""Published mAP numbers to compare against (CLIP ResNet-50 unless noted), with their sources.

Each number names the paper and table it comes from (SPARC, Miller et al., CVPR 2025, re-ran the
baselines with one protocol; TagCLIP's number is from its repository's README). The CoMC paper's own
table could not be retrieved, and its released code covers COCO only, so the CoMC row is the
released checkpoint as re-run by SPARC. None of these numbers is ever drawn from the toy world.
"""
from __future__ import annotations

import pandas as pd

from .rows import Row

__all__ = ["PUBLISHED_MAP", "published_table"]

# method, kind, {dataset: mAP}, source, our row under the same protocol (None: none here)
PUBLISHED_MAP = [
    ("CLIP zero-shot, 80-template ensemble", "training-free",
     {"voc2007": 79.7, "coco2014": 53.0, "nuswide": 38.5}, "SPARC (CVPR 2025) Table 2",
     Row.ZERO_SHOT_PUBLISHED),
    ("CLIP + local features (DPT-style)", "training-free",
     {"voc2007": 82.6, "coco2014": 57.1, "nuswide": 38.1}, "SPARC Table 3",
     Row.ZERO_SHOT_DENSE),
    ("TaI-DPT (CVPR 2023), 3 seeds", "text-only prompt tuning",
     {"voc2007": 88.5, "coco2014": 65.1, "nuswide": 46.2}, "SPARC Table 5", Row.TAIDPT),
    ("CoMC released checkpoint (1 seed)", "text-only classifier",
     {"coco2014": 68.8}, "SPARC Table 5 (re-run)", Row.COMC_RELEASED),
    ("SPARC", "training-free", {"voc2007": 89.2, "coco2014": 65.7, "nuswide": 45.8}, "SPARC Tables 2-5", Row.SPARC),
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
        row["our row (same protocol)"] = str(ours) if ours else ""
        rows.append(row)
    table = pd.DataFrame(rows).set_index("method")
    return table.dropna(subset=["published mAP"]) if dataset else table
