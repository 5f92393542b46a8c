"""Every error a user can cause reaches the command line as one ``error:`` line and exit status 2, no traceback."""
import pytest

from lcmc_core.__main__ import main

from chat_server import ChatServer

KEY = "sk-cli-test-0123456789abcdef"


def _one_error_line(capsys, argv, *, code=2):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == code, (rc, out, err)
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err   # progress lines may come before it
    assert "retrying" not in err, err                         # a fatal error is not retried
    return errors[0]


@pytest.mark.parametrize("override, expected", [
    ("corpus_size=0", r"corpus_size.*in \[1, 10000000\]"),
    ("corpus_size=-5", r"corpus_size.*in \[1, 10000000\]"),
    ("n_test=1", r"n_test.*>= 20"),
    ("dataset=imagenet", r"dataset: expected one of .*got .imagenet."),
    ("device=tpu", r"device.*tpu"),
    ("n_seeds=0", r"n_seeds"),
    ("batch_size=0", r"batch_size"),
    ("method.alpha=1.5", r"alpha.*\[0, 1\]"),
    ("alpha=-1", r"alpha"),
    ("llm.base_url=http://user:sk-secret-value-123@host/v1", r"base_url.*credentials"),
    ("no_such_key=1", r"no_such_key"),
])
def test_bad_parameters_fail_before_any_notebook(tmp_path, capsys, override, expected):
    import re
    line = _one_error_line(capsys, ["reproduce", "--profile", "smoke", "--out", str(tmp_path / "r"),
                                    "--set", override, "--no-progress"])
    assert re.search(expected, line), line
    assert "sk-secret-value-123" not in line
    assert not (tmp_path / "r" / "executed").exists()       # nothing ran


def test_profile_files_with_bad_bytes_or_repeated_keys(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"description: caf\xe9\nbase: toy\n")
    line = _one_error_line(capsys, ["reproduce", "--profile", str(bad), "--list"])
    assert "bad.yaml" in line and "UTF-8" in line
    twice = tmp_path / "twice.yaml"
    twice.write_text("base: toy\ncorpus_size: 10\ncorpus_size: 20\n")
    line = _one_error_line(capsys, ["reproduce", "--profile", str(twice), "--list"])
    assert "twice.yaml" in line and "corpus_size" in line and "twice" in line.lower()


def test_missing_dataset_root_is_one_line(tmp_path, capsys):
    line = _one_error_line(capsys, ["reproduce", "--profile", "voc2007", "--root", str(tmp_path / "absent"),
                                    "--out", str(tmp_path / "r"), "--no-progress"])
    assert "absent" in line


def test_llm_errors_are_one_line_without_the_key(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LCMC_CLI_KEY", KEY)
    with ChatServer(api_key="sk-the-right-one-0000000000", models=("fake-model",)) as server:
        base = ["generate-corpus", "--label-set", "voc2007", "--n", "5", "--generator", "openai",
                "--base-url", server.url, "--out", str(tmp_path / "c.jsonl")]
        wrong_key = _one_error_line(capsys, base + ["--model", "fake-model", "--api-key-env", "LCMC_CLI_KEY"])
        assert "401" in wrong_key or "authentication" in wrong_key.lower()
        assert KEY not in wrong_key and KEY[-8:] not in wrong_key
        monkeypatch.setenv("LCMC_CLI_KEY", "sk-the-right-one-0000000000")
        no_model = _one_error_line(capsys, base + ["--model", "gpt-nonexistent", "--api-key-env", "LCMC_CLI_KEY",
                                                   "--out", str(tmp_path / "d.jsonl")])
        assert "gpt-nonexistent" in no_model and "404" in no_model
    missing = _one_error_line(capsys, base + ["--model", "fake-model", "--api-key-env", "LCMC_NOT_SET_ANYWHERE"])
    assert "LCMC_NOT_SET_ANYWHERE" in missing
    no_name = _one_error_line(capsys, base[:-2] + ["--out", str(tmp_path / "e.jsonl"), "--api-key-env",
                                                   "LCMC_CLI_KEY"])
    assert "model" in no_name
    in_url = _one_error_line(capsys, ["generate-corpus", "--label-set", "voc2007", "--n", "5", "--generator",
                                      "openai", "--model", "m", "--base-url",
                                      "http://me:sk-in-the-url-12345678@127.0.0.1:9/v1", "--out",
                                      str(tmp_path / "f.jsonl")])
    assert "credentials" in in_url and "sk-in-the-url" not in in_url


def test_corpus_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "c.jsonl"
    assert main(["generate-corpus", "--label-set", "voc2007", "--n", "5", "--out", str(out)]) == 0
    capsys.readouterr()
    line = _one_error_line(capsys, ["generate-corpus", "--label-set", "voc2007", "--n", "5", "--seed", "3",
                                    "--out", str(out)])
    assert "c.jsonl" in line
    line = _one_error_line(capsys, ["generate-corpus", "--label-set", "imagenet", "--n", "5", "--out",
                                    str(tmp_path / "x.jsonl")])
    assert "imagenet" in line
