"""The benchmarks run and print what they promise (tiny sizes here; the real figures come from full runs)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_scale_benchmark_runs_the_comparison_from_a_cache_of_real_shapes(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--dataset", "nuswide", "--n", "300",
                          "--corpus", "500", "--n-boot", "20", "--keep", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    last = dict(item.split("=") for item in lines[-1].split())
    assert set(last) == {"peak_rss_gb", "seconds", "n"} and last["n"] == "300"
    assert 0 < float(last["peak_rss_gb"]) < 8 and float(last["seconds"]) > 0
    assert "whole comparison" in out.stdout and "corpus memory" in out.stdout
    local = tmp_path / "features" / "synthetic" / "local.npy"
    from lcmc_core.images.features import FeatureFile
    assert FeatureFile(local).shape == (300, 49, 1024)  # the real RN50 shape, in the cache's format
    assert FeatureFile(local.parent / "global_clip.npy").shape == (300, 1024)  # CLIP's own pooling, cached too


def test_cross_machine_measures_every_row_the_conclusions_check_compares(tmp_path):
    """Rows with a repeated name (per-seed tables) are each measured, as verify --conclusions compares each."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from cross_machine import largest_differences
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    for folder, values in (("ref", ("1.0", "2.0")), ("rerun", ("1.5", "2.25"))):
        (tmp_path / folder / "tables").mkdir(parents=True)
        (tmp_path / folder / "tables" / "t.csv").write_text(
            "seed,mAP,seconds\n" + "".join(f"0,{v},{i}\n" for i, v in enumerate(values)))
    measured = largest_differences(tmp_path / "ref", tmp_path / "rerun")
    assert measured == {"t.csv": {"seed": 0.0, "mAP": 0.5}}  # the first '0' row moved most; timings skipped
