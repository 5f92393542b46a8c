"""The command line: generate-corpus (resumable) and toy-clips (metrics JSON)."""
import json

from lcmc_core.__main__ import main


def test_generate_corpus_writes_and_resumes(tmp_path):
    out = tmp_path / "c.jsonl"
    assert main(["generate-corpus", "--label-set", "voc2007", "--n", "30", "--out", str(out)]) == 0
    first = out.read_bytes()
    assert 25 <= len(first.splitlines()) <= 30
    assert main(["generate-corpus", "--label-set", "voc2007", "--n", "30", "--out", str(out)]) == 0
    assert out.read_bytes() == first  # a rerun of a complete job changes nothing
    summary = json.loads((tmp_path / "c.summary.json").read_text())
    assert summary["status"] == "complete" and summary["pending"] == 0


def test_toy_clips_writes_metrics_for_every_variant(tmp_path, smoke_clip):
    assert main(["toy-clips", "--size", "smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "toy_clip_metrics.json").read_text())
    from lcmc_core.images.toyclip import VARIANTS
    assert set(report["variants"]) == set(VARIANTS)
    for v in report["variants"].values():
        for key in ("i2t_recall@1", "i2t_recall@5", "t2i_recall@1", "t2i_recall@5", "zero_shot_map",
                    "modality_gap"):
            assert key in v["metrics"]


def test_verify_is_a_command_that_states_its_tolerance(capsys):
    import pytest

    from lcmc_core.harness.verify import TOLERANCE

    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    text = capsys.readouterr().out
    assert "--reference DIR" in text and "The tolerance and why" in text
    assert f"rel {TOLERANCE.rel:g}" in text.replace("``rel 1e-9", "rel 1e-09") or "rel 1e-9" in text
