"""Profiles: the packaged YAML files, extends/notebooks/skip/required, --set, and what each notebook receives."""
from pathlib import Path

import nbformat
import pytest

from lcmc_core.errors import ConfigError
from lcmc_core.experiments import profiles
from lcmc_core.experiments.params import Params

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_NAMES = ["00_toy_world", "01_corpus_generation", "02_classifier_training", "03_modality_gap",
                  "04_mapping_ablations", "05_main_results", "06_gap_study", "07_comc_from_scratch"]


def make_notebook(path: Path, parameters_source: str = 'profile = ""\nout_dir = ""\nparams = {}',
                  body: str = "pass") -> Path:
    """Write a notebook with a `parameters` cell holding ``parameters_source``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters_source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def nbs(tmp_path):
    """Two numbered notebooks with the standard parameters cell."""
    return [make_notebook(tmp_path / "01_first.ipynb"), make_notebook(tmp_path / "02_second.ipynb")]


def write_profile(tmp_path: Path, text: str, name: str = "custom") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- packaged profiles
def test_packaged_profiles_are_the_six_expected():
    assert profiles.available_profiles() == ["coco2014", "nuswide", "smoke", "study", "toy", "voc2007"]


@pytest.mark.parametrize("name", ["toy", "smoke", "study", "voc2007", "coco2014", "nuswide"])
def test_every_packaged_profile_parses_and_validates(tmp_path, name):
    prof = profiles.load_profile(name)
    assert prof.name == name and prof.description
    overrides = {"data_root": "/data/somewhere"} if "data_root" in prof.required else {}
    notebooks = [make_notebook(tmp_path / f"{n}.ipynb") for n in NOTEBOOK_NAMES]
    values = profiles.resolve(prof, notebooks, overrides, out_dir=tmp_path / "results")
    for v in values.values():
        assert v["profile"] == name and v["out_dir"] == str((tmp_path / "results").absolute())
        assert isinstance(v["_params"], Params) and v["params"] == v["_params"].to_tree()
        for key, value in {**prof.params, **overrides}.items():
            node = v["params"]
            for part in key.split("."):
                node = node[part]
            assert node == (list(value) if isinstance(value, tuple) else value)
    if name in ("toy", "smoke"):
        assert len(values) == 7 and prof.params["dataset"] == "emoji-voc"     # every notebook but 06
        assert prof.params["clip_pretrained"] == "toy" and prof.params["toy_size"] == name
    elif name == "study":
        assert [p.stem[:2] for p in values] == ["06"] and prof.params["toy_size"] == "study"
    else:
        assert [p.stem[:2] for p in values] == ["01", "02", "03", "04", "05", "07"], "real data skip the toy world"
        assert prof.params["dataset"] == name and prof.params["clip_model"] == "RN50-quickgelu"  # OpenAI = QuickGELU
        assert prof.params["clip_pretrained"] == "openai"
        with pytest.raises(ConfigError, match="--root"):
            profiles.resolve(prof, notebooks, {})


def test_smoke_extends_toy_with_tiny_sizes():
    toy, smoke = profiles.load_profile("toy"), profiles.load_profile("smoke")
    assert smoke.params["corpus_size"] < toy.params["corpus_size"]
    assert smoke.params["n_test"] < toy.params["n_test"]


def test_packaged_profiles_validate_against_the_real_notebooks():
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for name in profiles.available_profiles():
        prof = profiles.load_profile(name)
        profiles.resolve(prof, notebooks, {"data_root": "/data"} if prof.required else {})


# --------------------------------------------------------------------------- resolution
def test_resolve_applies_layers_in_order(tmp_path, nbs):
    prof = write_profile(tmp_path, 'corpus_size: 500\nmethod:\n  alpha: 0.5\nnotebooks:\n  "02": {corpus_size: 700}\n')
    values = profiles.resolve(prof, nbs, {"method.temperature": 0.05, "02.method.alpha": 0.9},
                              out_dir=tmp_path / "out")
    first, second = values[nbs[0]]["_params"], values[nbs[1]]["_params"]
    assert first.corpus_size == 500 and first.method.alpha == 0.5 and first.method.temperature == 0.05
    assert second.corpus_size == 700 and second.method.alpha == 0.9
    assert values[nbs[0]]["_origins"]["method.alpha"] == str(prof)
    assert values[nbs[1]]["_origins"]["method.alpha"] == "--set 02.method.alpha"


def test_nested_keys_dotted_or_as_mappings_and_unique_leaf_names(tmp_path, nbs):
    prof = write_profile(tmp_path, "method.classifier.epochs: 3\nllm:\n  model: m\n")
    values = profiles.resolve(prof, nbs, {"alpha": 0.25, "noise_std": 0.0})
    p = values[nbs[0]]["_params"]
    assert p.method.classifier.epochs == 3 and p.llm.model == "m"
    assert p.method.alpha == 0.25 and p.method.classifier.noise_std == 0.0


def test_ambiguous_and_unknown_keys_name_the_candidates(tmp_path, nbs):
    with pytest.raises(ConfigError, match=r"'temperatur'.*Did you mean 'temperature'"):
        profiles.resolve(write_profile(tmp_path, ""), nbs, {"temperatur": 1})
    # "temperature" is both llm.temperature and method.temperature: as a leaf name it is ambiguous
    with pytest.raises(ConfigError, match="ambiguous: it may be llm.temperature or method.temperature"):
        profiles.resolve(write_profile(tmp_path, ""), nbs, {"temperature": 1})
    with pytest.raises(ConfigError, match="ambiguous"):
        profiles.load_profile(write_profile(tmp_path, "temperature: 0.5\n"))


def test_unknown_key_names_the_file_and_close_matches(tmp_path, nbs):
    prof = write_profile(tmp_path, "corpus_sise: 10\n")
    with pytest.raises(ConfigError) as err:
        profiles.resolve(prof, nbs, {})
    msg = str(err.value)
    assert "'corpus_sise'" in msg and str(prof) in msg and "Did you mean 'corpus_size'" in msg


def test_unknown_notebook_in_the_notebooks_section_or_set(tmp_path, nbs):
    prof = write_profile(tmp_path, 'skip: [9]\n')
    with pytest.raises(ConfigError, match="skip: there is no notebook 09"):
        profiles.resolve(prof, nbs, {})
    with pytest.raises(ConfigError, match="there is no notebook 07"):
        profiles.resolve(write_profile(tmp_path, ""), nbs, {"07.seed": 1})


def test_every_problem_is_reported_at_once(tmp_path, nbs):
    with pytest.raises(ConfigError) as err:
        profiles.resolve(write_profile(tmp_path, "seed: -1\ncorpus_size: x\n"), nbs, {"num_workers": -3})
    assert "3 problems" in str(err.value) and "nothing was run" in str(err.value)


def test_runner_keys_cannot_be_set(tmp_path, nbs):
    with pytest.raises(ConfigError, match="use --out"):
        profiles.load_profile(write_profile(tmp_path, "out_dir: /tmp/x\n"))
    with pytest.raises(ConfigError, match="profile's name"):
        profiles.resolve(write_profile(tmp_path, ""), nbs, {"profile": "other"})


def test_required_parameter_must_be_given(tmp_path, nbs):
    prof = write_profile(tmp_path, 'dataset: voc2007\ndata_root: ""\nrequired: [data_root]\n')
    with pytest.raises(ConfigError, match=r"needs 'data_root': pass --root PATH"):
        profiles.resolve(prof, nbs, {})
    values = profiles.resolve(prof, nbs, {}, check_required=False)
    assert values[nbs[0]]["_params"].data_root == ""


def test_path_values_are_made_absolute(tmp_path, nbs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    values = profiles.resolve(write_profile(tmp_path, "dataset: voc2007\n"), nbs,
                              {"data_root": "data/voc", "corpus_path": "./c.jsonl"})
    p = values[nbs[0]]["_params"]
    assert p.data_root == str(tmp_path / "data" / "voc") and p.corpus_path == str(tmp_path / "c.jsonl")


def test_skip_removes_notebooks(tmp_path, nbs):
    values = profiles.resolve(write_profile(tmp_path, 'skip: ["01"]\n'), nbs, {})
    assert list(values) == [nbs[1]]


# --------------------------------------------------------------------------- secrets in profiles and --set
def test_secret_key_in_profile_is_refused_with_the_environment_hint(tmp_path):
    for text in ('openai_api_key: "abc"\n', 'notebooks:\n  "01": {hf_token: "abc"}\n', 'llm:\n  api_key: "x"\n'):
        with pytest.raises(ConfigError) as err:
            profiles.load_profile(write_profile(tmp_path, text))
        msg = str(err.value)
        assert "looks like a secret" in msg and "environment" in msg and "OPENAI_API_KEY" in msg


def test_secret_key_on_the_command_line_is_refused(tmp_path, nbs):
    with pytest.raises(ConfigError, match="secrets come from the environment only"):
        profiles.parse_set(["api_key=sk-abc"])
    with pytest.raises(ConfigError, match="looks like a secret"):
        profiles.resolve(write_profile(tmp_path, ""), nbs, {"my_token": "x"})


def test_secret_looking_value_is_refused(tmp_path, nbs):
    with pytest.raises(ConfigError, match="looks like an API key"):
        profiles.resolve(write_profile(tmp_path, ""), nbs, {"llm.model": "sk-abcdefghijklmnopqrstuvwx"})
    with pytest.raises(ConfigError, match="looks like an API key"):
        profiles.load_profile(write_profile(tmp_path, 'llm.model: "sk-abcdefghijklmnopqrstuvwx"\n'))


# --------------------------------------------------------------------------- files users write
def test_parse_set_reads_yaml_values():
    assert profiles.parse_set(["n=3", "rate=0.5", "flag=true", "name=RN50", "items=[1, 2]", "empty=",
                               "03.alpha=0.9", "url=a=b"]) == {
        "n": 3, "rate": 0.5, "flag": True, "name": "RN50", "items": [1, 2], "empty": "", "03.alpha": 0.9,
        "url": "a=b"}
    with pytest.raises(ConfigError, match="expected key=value"):
        profiles.parse_set(["n"])


def test_command_line_exponent_is_a_float(tmp_path, nbs):
    values = profiles.resolve(write_profile(tmp_path, ""), nbs, profiles.parse_set(["method.classifier.lr=1e-3"]))
    assert values[nbs[0]]["_params"].method.classifier.lr == 0.001


def test_unknown_profile_name_lists_the_packaged_ones():
    with pytest.raises(ConfigError, match="expected one of coco2014, nuswide, smoke, study, toy, voc2007.*'toy'"):
        profiles.load_profile("toyy")
    with pytest.raises(ConfigError, match="does not exist"):
        profiles.load_profile("/nonexistent/profile.yaml")


def test_extends_merges_and_detects_cycles(tmp_path):
    write_profile(tmp_path, 'corpus_size: 100\nseed: 3\nnotebooks:\n  "02": {seed: 2}\nskip: ["01"]\n', "base")
    child = profiles.load_profile(write_profile(tmp_path, "extends: base.yaml\ncorpus_size: 500\n", "child"))
    assert child.name == "child" and child.params == {"corpus_size": 500, "seed": 3}
    assert child.notebooks == {"02": {"seed": 2}} and child.skip == ("01",)
    write_profile(tmp_path, "extends: b.yaml\n", "a")
    write_profile(tmp_path, "extends: a.yaml\n", "b")
    with pytest.raises(ConfigError, match="cycle"):
        profiles.load_profile(tmp_path / "a.yaml")


def test_malformed_profiles_name_the_file(tmp_path):
    for text, expected in [("- a\n- b\n", "expected a mapping"), ("seed: [1\n", "not valid YAML"),
                           ("notebooks: [1]\n", "'notebooks' must map")]:
        path = write_profile(tmp_path, text)
        with pytest.raises(ConfigError, match=expected) as err:
            profiles.load_profile(path)
        assert str(path) in str(err.value)


def test_a_repeated_yaml_key_is_an_error_not_the_last_value(tmp_path):
    path = write_profile(tmp_path, "seed: 1\ncorpus_size: 10\nseed: 2\n")
    with pytest.raises(ConfigError, match=r"line 3: the key 'seed' appears twice \(first on line 1\)") as err:
        profiles.load_profile(path)
    assert str(path) in str(err.value)


def test_invalid_utf8_profile_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"description: caf\xe9\nseed: 1\n")
    with pytest.raises(ConfigError, match="not valid UTF-8") as err:
        profiles.load_profile(path)
    assert str(path) in str(err.value)


def test_notebook_numbers():
    assert profiles.notebook_number(3) == "03" and profiles.notebook_number("3") == "03"
    assert profiles.notebook_number("03_modality_gap.ipynb") == "03"
    with pytest.raises(ConfigError):
        profiles.notebook_number("modality")


def test_resolve_device():
    assert profiles.resolve_device("cpu") == "cpu"
    assert profiles.resolve_device("auto") in ("cpu", "cuda")
