"""verify: a rerun's tables against the committed ones (a git revision or a reference folder), cell by cell."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lcmc_core.__main__ import main
from lcmc_core.errors import ConfigError
from lcmc_core.harness import verify as vf

MAIN = ('method,mAP,CI low,pretraining (s)\n'
        '"zero-shot, global",82.66110629393657,81.42253907518311,209.3\n'
        'CoMC (full),83.50712580911264,82.24852133494485,210.0\n')
METRICS = {"size": "toy", "variants": {"clip-like-gap": {"metrics": {"zero_shot_map": 81.58034688665313,
                                                                    "modality_gap": 0.800566648283731},
                                                        "seconds": {"pretrain": 209.3}}}}


def _tables(folder: Path, main_csv: str = MAIN, metrics: dict = METRICS) -> Path:
    tables = folder / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    (tables / "05_main_results.csv").write_text(main_csv)
    (tables / "05_main_results.md").write_text("| not compared |\n")
    (tables / "toy_clip_metrics.json").write_text(json.dumps(metrics, indent=2))
    (folder / "manifest.json").write_text(json.dumps({"status": "ok", "packages": {"torch": "2.14.1"},
                                                      "environment": {"differs_from_lock": []}}))
    return folder


def test_float_noise_agrees_and_timings_are_skipped():
    noisy = MAIN.replace("81.42253907518311", "81.42253907518308").replace("209.3", "314.7")
    assert vf.compare_csv("t.csv", MAIN, noisy) == []
    other = json.loads(json.dumps(METRICS))
    other["variants"]["clip-like-gap"]["metrics"]["zero_shot_map"] += 3e-14
    other["variants"]["clip-like-gap"]["seconds"]["pretrain"] = 1.0
    assert vf.compare_json("m.json", json.dumps(METRICS), json.dumps(other)) == []


def test_a_changed_cell_is_named_with_both_values():
    changed = MAIN.replace("82.66110629393657", "82.7")
    (diff,) = vf.compare_csv("tables/05_main_results.csv", MAIN, changed)
    assert str(diff) == ("tables/05_main_results.csv: zero-shot, global / mAP: 82.7 (rerun) vs 82.66110629393657 "
                         "(committed), difference +0.0389")
    assert vf.compare_csv("t.csv", MAIN, changed, vf.Tolerance(rel=0, abs=0.05)) == [], "a looser tolerance passes"
    text = MAIN.replace("CoMC (full)", "CoMC")
    assert "'CoMC' (rerun) vs 'CoMC (full)' (committed)" in str(vf.compare_csv("t.csv", MAIN, text)[0])
    assert "header" in str(vf.compare_csv("t.csv", MAIN, MAIN.replace("mAP", "map"))[0])
    shorter = MAIN.rsplit("CoMC", 1)[0]
    assert [str(d) for d in vf.compare_csv("t.csv", MAIN, shorter)] == ["t.csv: rows: 1 (rerun) vs 2 (committed)"]


def test_json_differences_name_the_key_path():
    other = json.loads(json.dumps(METRICS))
    other["variants"]["clip-like-gap"]["metrics"]["modality_gap"] = 0.81
    other["variants"]["clip-like-gap"]["metrics"].pop("zero_shot_map")
    found = [str(d) for d in vf.compare_json("m.json", json.dumps(METRICS), json.dumps(other))]
    assert found == ["m.json: variants.clip-like-gap.metrics.modality_gap: 0.81 (rerun) vs 0.800566648283731 "
                     "(committed), difference +0.00943",
                     "m.json: variants.clip-like-gap.metrics.zero_shot_map: missing in the rerun"]


def test_the_tolerance_is_stated_once():
    assert vf.TOLERANCE == vf.Tolerance(rel=1e-9, abs=1e-9)
    assert "The tolerance and why" in vf.__doc__ and "TRAIN_THREADS" in vf.__doc__
    assert vf.IGNORED.match("pretraining (s)") and vf.IGNORED.match("seconds") and not vf.IGNORED.match("mAP")


def test_verify_against_a_reference_folder(tmp_path, capsys):
    ref = _tables(tmp_path / "ref")
    rerun = _tables(tmp_path / "rerun")
    assert main(["verify", "--profile", "toy", "--out", str(rerun), "--reference", str(ref)]) == 0
    assert "verify: 2 tables of" in capsys.readouterr().out
    _tables(rerun, MAIN.replace("83.50712580911264", "83.4"))
    (rerun / "tables" / "toy_clip_metrics.json").unlink()
    (rerun / "tables" / "extra.csv").write_text("a\n1\n")
    assert main(["verify", "--profile", "toy", "--out", str(rerun), "--reference", str(ref)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["tables/05_main_results.csv: CoMC (full) / mAP: 83.4 (rerun) vs 83.50712580911264 (committed), "
                       "difference -0.107",
                       "tables/extra.csv: only in the rerun (not in " + str(ref) + ")",
                       "tables/toy_clip_metrics.json: missing in the rerun (it is in " + str(ref) + ")"]
    assert out[-1].startswith("verify: 3 differences in 3 of 3 tables")
    assert main(["verify", "--profile", "toy", "--out", str(rerun), "--reference", str(ref), "--abs-tol", "0.2"]) == 1


def test_missing_rerun_or_reference_is_one_error_line(tmp_path, capsys):
    assert main(["verify", "--profile", "toy", "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: verify: there is no rerun at")
    rerun = _tables(tmp_path / "rerun")
    assert main(["verify", "--out", str(rerun), "--reference", str(tmp_path / "nothing")]) == 2
    assert "is not a folder of tables" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="holds no tables"):
        vf.verify("toy", out=rerun, reference=empty)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_verify_against_git_head(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    _tables(repo / "results" / "toy")

    def git(*args):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", "results")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "results")
    monkeypatch.chdir(repo)
    assert main(["verify", "--profile", "toy"]) == 0
    assert "agree with git HEAD:results/toy/tables" in capsys.readouterr().out
    _tables(repo / "results" / "toy", MAIN.replace("82.66110629393657", "82.6"))
    assert main(["verify", "--profile", "toy"]) == 1
    assert "zero-shot, global / mAP: 82.6 (rerun) vs 82.66110629393657 (committed)" in capsys.readouterr().out
    rerun = _tables(tmp_path / "elsewhere")
    assert main(["verify", "--profile", "toy", "--out", str(rerun)]) == 0, "--out: a rerun outside the checkout"
    capsys.readouterr()
    assert main(["verify", "--profile", "study", "--out", str(rerun)]) == 2
    assert "git has no results/study/tables/ at HEAD" in capsys.readouterr().err


def test_a_rerun_that_did_not_finish_is_not_verified(tmp_path, capsys):
    ref, rerun = _tables(tmp_path / "ref"), _tables(tmp_path / "rerun")
    (rerun / "manifest.json").write_text(json.dumps({"status": "failed", "failure": {
        "notebook": "05_main_results.ipynb", "ename": "ValueError"}}))
    assert main(["verify", "--out", str(rerun), "--reference", str(ref)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ended with status 'failed' (05_main_results.ipynb failed" in err
    (rerun / "manifest.json").unlink()
    assert main(["verify", "--out", str(rerun), "--reference", str(ref)]) == 2
    assert "no readable manifest.json" in capsys.readouterr().err


def test_unreadable_tables_and_bad_tolerances_are_one_error_line(tmp_path, capsys):
    ref, rerun = _tables(tmp_path / "ref"), _tables(tmp_path / "rerun")
    (rerun / "tables" / "05_main_results.csv").write_bytes(b"method,mAP\n\xff\xfe,1\n")
    assert main(["verify", "--out", str(rerun), "--reference", str(ref)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    for flag in ("--rel-tol", "--abs-tol"):
        assert main(["verify", "--out", str(ref), "--reference", str(ref), flag, "-1"]) == 2
        assert f"{flag} must be a finite number >= 0" in capsys.readouterr().err
    assert main(["verify", "--out", str(ref), "--reference", str(ref), "--rel-tol", "nan"]) == 2


def test_the_report_says_whether_the_environment_is_the_lock_and_what_differs_from_the_reference(tmp_path, capsys):
    ref, rerun = _tables(tmp_path / "ref"), _tables(tmp_path / "rerun")
    (rerun / "manifest.json").write_text(json.dumps({"status": "ok", "packages": {"torch": "2.15.0"},
                                                     "environment": {"differs_from_lock": ["torch 2.15.0 (lock: 2.14.1)"]},
                                                     "system": {"cpu_model": "AMD EPYC"}}))
    assert main(["verify", "--out", str(rerun), "--reference", str(ref / "tables")]) == 0
    out = capsys.readouterr().out
    assert "1 package(s) of the rerun differ from requirements.lock: torch 2.15.0 (lock: 2.14.1)" in out
    assert "torch 2.15.0 (reference run: 2.14.1)" in out and "cpu_model AMD EPYC" in out


# --- the reviewer's check: conclusions, not cells ----------------------------------------------------
PAIRED = ("comparison,difference,CI low,CI high,family-wise low,family-wise high,verdict\n"
          "CoMC (full) - zero-shot,1.60,0.40,2.50,0.10,2.90,CoMC (full) higher\n"
          "CoMC (full) - DeCap,-0.60,-1.20,-0.01,-1.40,0.20,not distinguishable\n"
          "CoMC (full) - C3,0.80,0.20,1.50,0.05,1.70,CoMC (full) higher\n")
TABLE = "method,mAP,CI low,CI high\nzero-shot,82.10,80.9,83.4\nDeCap,84.30,83.1,85.4\nCoMC (full),83.70,82.4,84.9\n"
TOLERANCES = {"default": 0.5, "tables": {"05_main_results.csv": {"*": 0.6}, "05_paired_differences.csv": {"*": 0.3}}}


def _conclusion_tables(folder: Path, paired: str = PAIRED, table: str = TABLE) -> Path:
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    (folder / "tables" / "05_paired_differences.csv").write_text(paired)
    (folder / "tables" / "05_main_results.csv").write_text(table)
    (folder / "manifest.json").write_text(json.dumps({"status": "ok"}))
    return folder


def _check(tmp_path, rerun: Path, ref: Path, capsys) -> tuple[int, str]:
    tol = tmp_path / "tolerances.json"
    tol.write_text(json.dumps(TOLERANCES))
    code = main(["verify", "--out", str(rerun), "--reference", str(ref / "tables"), "--conclusions",
                 "--tolerances", str(tol)])
    return code, capsys.readouterr().out


def test_a_rerun_with_small_differences_fails_the_exact_check_and_passes_the_conclusions(tmp_path, capsys):
    ref = _conclusion_tables(tmp_path / "ref")
    moved = PAIRED.replace("1.60,0.40,2.50,0.10", "1.45,0.31,2.38,0.02").replace("-1.20,-0.01", "-1.05,0.12")
    rerun = _conclusion_tables(tmp_path / "rerun", moved, TABLE.replace("84.30", "84.05").replace("83.70", "83.72"))
    assert main(["verify", "--out", str(rerun), "--reference", str(ref / "tables")]) == 1   # exact: cells differ
    capsys.readouterr()
    code, out = _check(tmp_path, rerun, ref, capsys)
    assert code == 0, out
    assert "conclusions hold: 3 of 3 verdicts" in out


def test_a_verdict_changed_by_hand_fails_naming_the_claim(tmp_path, capsys):
    ref = _conclusion_tables(tmp_path / "ref")
    flipped = PAIRED.replace("0.80,0.20,1.50,0.05,1.70,CoMC (full) higher", "0.80,0.20,1.50,0.05,1.70,CoMC (full) lower")
    code, out = _check(tmp_path, _conclusion_tables(tmp_path / "rerun", flipped), ref, capsys)
    assert code == 1
    assert "verdict: 05_paired_differences.csv / CoMC (full) - C3: committed 'CoMC (full) higher'" in out
    assert "rerun 'CoMC (full) lower'" in out and "conclusions CHANGED" in out


def test_a_verdict_at_its_boundary_may_flip_and_a_resolved_one_may_not(tmp_path, capsys):
    ref = _conclusion_tables(tmp_path / "ref")
    # C3's family-wise interval ended at +0.05, within the tolerance 0.3 of 0: "not distinguishable" is the same claim
    near = PAIRED.replace("0.80,0.20,1.50,0.05,1.70,CoMC (full) higher", "0.70,0.10,1.40,-0.04,1.60,not distinguishable")
    assert _check(tmp_path, _conclusion_tables(tmp_path / "r1", near), ref, capsys)[0] == 0
    # zero-shot's ended at +0.10 committed but -0.50 in the rerun: beyond the tolerance, the claim changed
    far = PAIRED.replace("1.60,0.40,2.50,0.10,2.90,CoMC (full) higher", "1.00,-0.20,2.00,-0.50,2.50,not distinguishable")
    code, out = _check(tmp_path, _conclusion_tables(tmp_path / "r2", far), ref, capsys)
    assert code == 1 and "CoMC (full) - zero-shot" in out


def test_a_resolved_ranking_that_swaps_fails_and_one_within_the_noise_does_not(tmp_path, capsys):
    ref = _conclusion_tables(tmp_path / "ref")
    within = TABLE.replace("84.30", "83.65").replace("83.70", "83.75")   # 0.6 apart committed: within 0.6, unresolved
    assert _check(tmp_path, _conclusion_tables(tmp_path / "r1", table=within), ref, capsys)[0] == 1   # a number moved
    swapped = TABLE.replace("82.10", "82.20").replace("83.70", "82.00")
    code, out = _check(tmp_path, _conclusion_tables(tmp_path / "r2", table=swapped), ref, capsys)
    assert code == 1 and "ranking: 05_main_results.csv / CoMC (full) above zero-shot" in out


def test_the_packaged_tolerances_come_from_a_measurement():
    from lcmc_core.harness.conclusions import MARGIN, load_tolerances
    tol = load_tolerances()
    assert tol["margin"] == MARGIN and tol["measured"]["cpu_caps"] and tol["tables"]
    for file, columns in tol["tables"].items():
        measured = tol["measured"]["largest_difference"].get(file, {})
        for column, value in columns.items():
            if column in measured:
                assert value >= MARGIN * measured[column] - 1e-12, (file, column)


def test_columns_without_a_measured_tolerance_are_named_as_a_loose_check():
    from lcmc_core.harness.conclusions import check_conclusions, format_conclusions
    table = "method,mAP,CF1@3\nCoMC,80.0,60.0\n"
    tolerances = {"default": 5.0, "tables": {"t.csv": {"mAP": 0.5}}}
    report = check_conclusions({"t.csv": table, "u.csv": table}, {"t.csv": table, "u.csv": table}, tolerances,
                               lambda c: False)
    assert report.ok and report.unmeasured == {"t.csv / CF1@3", "u.csv / mAP", "u.csv / CF1@3"}
    assert "3 columns of 2 tables (t.csv, u.csv) have no measured cross-machine tolerance" in \
        format_conclusions(report, "rerun", "ref")
