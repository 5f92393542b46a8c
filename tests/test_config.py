"""Profiles and parameter validation (lcmc_core.config): no kernel is started here."""
from pathlib import Path

import nbformat
import pytest

from lcmc_core import config
from lcmc_core.config import COMMON_PARAMETERS, ConfigError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_NAMES = ["00_toy_world", "01_corpus_generation", "02_classifier_training", "03_modality_gap",
                  "04_mapping_ablations", "05_main_results"]
DEFAULTS = {int: "0", float: "0.0", str: '""', bool: "False"}


def make_notebook(path: Path, parameters_source: str, body: str = "pass") -> Path:
    """Write a notebook with a `parameters` cell holding ``parameters_source``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters_source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def fake_notebook_set(folder: Path) -> list[Path]:
    """The six numbered notebooks, each declaring every common parameter with a default of its type."""
    src = "\n".join(f"{k} = {DEFAULTS[t]}" for k, (t, _) in COMMON_PARAMETERS.items())
    return [make_notebook(folder / f"{name}.ipynb", src) for name in NOTEBOOK_NAMES]


@pytest.fixture
def nbs(tmp_path):
    """Two notebooks: 01 declares n/rate/name/flag, 02 declares n and alpha (float)."""
    a = make_notebook(tmp_path / "01_first.ipynb",
                      'profile = ""\nout_dir = ""\nn = 3\nrate = 0.5\nname = "x"\nflag = False\n'
                      'data_root = ""\nitems = [1, 2]\nanything = None\nmaybe: int = None')
    b = make_notebook(tmp_path / "02_second.ipynb", 'out_dir = ""\nn = 1\nalpha = 0.7')
    return [a, b]


def write_profile(tmp_path: Path, text: str, name: str = "custom") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- packaged profiles

def test_packaged_profiles_are_the_five_expected():
    assert config.available_profiles() == ["coco2014", "nuswide", "smoke", "toy", "voc2007"]


@pytest.mark.parametrize("name", ["toy", "smoke", "voc2007", "coco2014", "nuswide"])
def test_every_packaged_profile_parses_and_validates(tmp_path, name):
    prof = config.load_profile(name)
    assert prof.name == name and prof.description
    assert set(prof.params) <= set(COMMON_PARAMETERS), "packaged profiles use only the common parameters"
    notebooks = fake_notebook_set(tmp_path)
    overrides = {"data_root": "/data/somewhere"} if "data_root" in prof.required else {}
    params = config.resolve(prof, notebooks, overrides, out_dir=tmp_path / "results")
    for p, values in params.items():
        assert values["profile"] == name
        assert values["out_dir"] == str((tmp_path / "results").absolute())
        for key, value in {**prof.params, **overrides}.items():
            assert values[key] == value
    if name in ("toy", "smoke"):
        assert len(params) == 6 and prof.params["dataset"] == "emoji-voc"
        assert prof.params["clip_pretrained"] == "toy" and prof.params["toy_size"] == name
    else:
        assert [p.stem[:2] for p in params] == ["01", "02", "03", "04", "05"], "real data skip the toy world"
        assert prof.params["dataset"] == name and prof.params["clip_model"] == "RN50-quickgelu"  # OpenAI = QuickGELU
        assert prof.params["clip_pretrained"] == "openai"
        with pytest.raises(ConfigError, match="--root"):
            config.resolve(prof, notebooks, {})


def test_smoke_extends_toy_with_tiny_sizes():
    toy, smoke = config.load_profile("toy"), config.load_profile("smoke")
    assert smoke.params["corpus_size"] < toy.params["corpus_size"]
    assert smoke.params["n_test"] < toy.params["n_test"]
    assert {k: v for k, v in smoke.params.items() if k not in ("toy_size", "corpus_size", "n_test")} == \
        {k: v for k, v in toy.params.items() if k not in ("toy_size", "corpus_size", "n_test")}


def test_packaged_profiles_validate_against_the_real_notebooks():
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        pytest.skip("notebooks/ has no numbered notebooks yet")
    for name in config.available_profiles():
        prof = config.load_profile(name)
        config.resolve(prof, notebooks, {"data_root": "/data"} if prof.required else {})


# --------------------------------------------------------------------------- notebook parameters

def test_notebook_parameters_infers_types(nbs):
    params = config.notebook_parameters(nbs[0])
    assert {k: p.type_name for k, p in params.items()} == {
        "profile": "str", "out_dir": "str", "n": "int", "rate": "float", "name": "str", "flag": "bool",
        "data_root": "str", "items": "list", "anything": "any", "maybe": "int"}
    assert params["n"].default == 3 and params["rate"].default == 0.5 and params["items"].default == [1, 2]
    assert params["maybe"].optional and not params["n"].optional


def test_notebook_without_parameters_cell_declares_nothing(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, str(tmp_path / "01_x.ipynb"))
    assert config.notebook_parameters(tmp_path / "01_x.ipynb") == {}


# --------------------------------------------------------------------------- resolution

def test_resolve_applies_layers_in_order(tmp_path, nbs):
    prof = write_profile(tmp_path, 'n: 5\nname: "from profile"\nnotebooks:\n  "02": {n: 7}\n')
    params = config.resolve(prof, nbs, {"rate": 2, "02.alpha": 0.9}, out_dir=tmp_path / "out")
    first, second = params[nbs[0]], params[nbs[1]]
    assert first["n"] == 5 and first["name"] == "from profile" and first["profile"] == "custom"
    assert first["rate"] == 2.0 and isinstance(first["rate"], float), "int accepted (and converted) for a float"
    assert second == {"out_dir": str((tmp_path / "out").absolute()), "n": 7, "alpha": 0.9}
    assert "anything" in first and first["anything"] is None


def test_unknown_key_names_the_key_the_file_and_close_matches(tmp_path, nbs):
    prof = write_profile(tmp_path, "rat: 0.1\n")
    with pytest.raises(ConfigError) as err:
        config.resolve(prof, nbs, {})
    msg = str(err.value)
    assert "'rat'" in msg and str(prof) in msg and "Did you mean 'rate'" in msg
    assert "Known parameters: alpha, anything, data_root" in msg and "nothing was run" in msg


def test_unknown_key_in_notebook_section_and_unknown_notebook(tmp_path, nbs):
    prof = write_profile(tmp_path, 'notebooks:\n  "02": {rate: 0.1}\n  "07": {n: 1}\n')
    with pytest.raises(ConfigError) as err:
        config.resolve(prof, nbs, {})
    msg = str(err.value)
    assert "02_second.ipynb does not declare it" in msg and "there is no notebook 07" in msg


@pytest.mark.parametrize("key, value, expected", [
    ("n", "three", "expected int"), ("n", 2.5, "expected int"), ("n", True, "expected int"),
    ("rate", "fast", "expected float"), ("rate", False, "expected float"),
    ("flag", 1, "expected bool"), ("name", 12, "expected str"), ("name", None, "expected str"),
    ("items", "a", "expected list"), ("maybe", "x", "expected int or None"),
])
def test_wrong_types_are_refused_naming_key_type_and_value(tmp_path, nbs, key, value, expected):
    with pytest.raises(ConfigError) as err:
        config.resolve(write_profile(tmp_path, ""), nbs, {key: value})
    msg = str(err.value)
    assert f"'{key}'" in msg and expected in msg and repr(value) in msg and "01_first.ipynb" in msg


def test_yaml_number_for_a_string_gets_a_quoting_hint(tmp_path, nbs):
    with pytest.raises(ConfigError, match='quote it'):
        config.resolve(write_profile(tmp_path, "name: 2024\n"), nbs, {})


def test_none_default_and_optional_accept_values(tmp_path, nbs):
    params = config.resolve(write_profile(tmp_path, "anything: [1, 2]\nmaybe: 4\n"), nbs, {})
    assert params[nbs[0]]["anything"] == [1, 2] and params[nbs[0]]["maybe"] == 4


def test_every_problem_is_reported_at_once(tmp_path, nbs):
    with pytest.raises(ConfigError) as err:
        config.resolve(write_profile(tmp_path, "rat: 1\nn: x\n"), nbs, {"flag": 3})
    assert "3 problem(s)" in str(err.value)


def test_runner_keys_cannot_be_set(tmp_path, nbs):
    with pytest.raises(ConfigError, match="use --out"):
        config.load_profile(write_profile(tmp_path, "out_dir: /tmp/x\n"))
    with pytest.raises(ConfigError, match="profile's name"):
        config.resolve(write_profile(tmp_path, ""), nbs, {"profile": "other"})


def test_required_parameter_must_be_given(tmp_path, nbs):
    prof = write_profile(tmp_path, 'data_root: ""\nrequired: [data_root]\n')
    with pytest.raises(ConfigError, match=r"needs 'data_root': pass --root PATH"):
        config.resolve(prof, nbs, {})
    params = config.resolve(prof, nbs, {}, check_required=False)
    assert params[nbs[0]]["data_root"] == ""


def test_path_values_are_made_absolute(tmp_path, nbs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = config.resolve(write_profile(tmp_path, ""), nbs, {"data_root": "data/voc", "name": "./x.txt"})
    assert params[nbs[0]]["data_root"] == str(tmp_path / "data" / "voc")
    assert params[nbs[0]]["name"] == str(tmp_path / "x.txt")


def test_skip_removes_notebooks_and_must_name_existing_ones(tmp_path, nbs):
    params = config.resolve(write_profile(tmp_path, 'skip: ["01"]\n'), nbs, {})
    assert list(params) == [nbs[1]]
    with pytest.raises(ConfigError, match="skip: there is no notebook 09"):
        config.resolve(write_profile(tmp_path, "skip: [9]\n"), nbs, {})


# --------------------------------------------------------------------------- secrets

@pytest.mark.parametrize("key", ["api_key", "openai_api_key", "OPENAI_API_KEY", "key", "hf_token", "token",
                                 "access_token", "authtoken", "client_secret", "password", "db_passwd",
                                 "apikey", "credentials"])
def test_secret_looking_names(key):
    assert config.is_secret_name(key)


@pytest.mark.parametrize("key", ["max_tokens", "n_tokens_per_text", "tokenizer", "api_key_env", "llm_max_tokens", "seed", "n_test", "keyword",
                                 "corpus_generator", "data_root", "monkey_count"])
def test_ordinary_names_are_not_secret(key):
    assert not config.is_secret_name(key)


def test_secret_key_in_profile_is_refused_with_the_environment_hint(tmp_path, nbs):
    for text in ('openai_api_key: "abc"\n', 'notebooks:\n  "01": {hf_token: "abc"}\n'):
        with pytest.raises(ConfigError) as err:
            config.load_profile(write_profile(tmp_path, text))
        msg = str(err.value)
        assert "looks like a secret" in msg and "environment" in msg and "OPENAI_API_KEY" in msg


def test_secret_key_on_the_command_line_is_refused(tmp_path, nbs):
    with pytest.raises(ConfigError, match="secrets come from the environment only"):
        config.parse_set(["api_key=sk-abc"])
    with pytest.raises(ConfigError, match="looks like a secret"):
        config.resolve(write_profile(tmp_path, ""), nbs, {"my_token": "x"})


def test_secret_looking_value_is_refused(tmp_path, nbs):
    with pytest.raises(ConfigError, match="looks like an API key"):
        config.resolve(write_profile(tmp_path, ""), nbs, {"name": "sk-abcdefghijklmnopqrstuvwx"})


def test_notebook_declaring_a_secret_parameter_is_refused(tmp_path):
    nb = make_notebook(tmp_path / "01_x.ipynb", 'openai_api_key = ""\nn = 1')
    with pytest.raises(ConfigError, match="01_x.ipynb declares the parameter 'openai_api_key'"):
        config.resolve(write_profile(tmp_path, ""), [nb], {})


def test_redact_replaces_secret_environment_values(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-redact-me-123456")
    assert config.redact('x "sk-test-redact-me-123456" y') == 'x "<redacted>" y'


# --------------------------------------------------------------------------- --set and loading

def test_parse_set_reads_yaml_values():
    assert config.parse_set(["n=3", "rate=0.5", "flag=true", "name=RN50", "items=[1, 2]", "empty=",
                             "03.alpha=0.9", "url=a=b"]) == {
        "n": 3, "rate": 0.5, "flag": True, "name": "RN50", "items": [1, 2], "empty": "", "03.alpha": 0.9,
        "url": "a=b"}
    with pytest.raises(ConfigError, match="expected key=value"):
        config.parse_set(["n"])


def test_command_line_exponent_is_a_float(tmp_path, nbs):
    overrides = config.parse_set(["rate=1e-3", "n=10"])
    params = config.resolve(write_profile(tmp_path, ""), nbs, overrides)
    assert params[nbs[0]]["rate"] == 0.001 and params[nbs[0]]["n"] == 10


def test_unknown_profile_name_lists_the_packaged_ones():
    with pytest.raises(ConfigError, match="expected one of coco2014, nuswide, smoke, toy, voc2007.*'toy'"):
        config.load_profile("toyy")
    with pytest.raises(ConfigError, match="does not exist"):
        config.load_profile("/nonexistent/profile.yaml")


def test_extends_merges_and_detects_cycles(tmp_path):
    write_profile(tmp_path, 'n: 1\nname: base\nnotebooks:\n  "02": {n: 2}\nskip: ["01"]\n', "base")
    child = config.load_profile(write_profile(tmp_path, "extends: base.yaml\nn: 5\n", "child"))
    assert child.name == "child" and child.params == {"n": 5, "name": "base"}
    assert child.notebooks == {"02": {"n": 2}} and child.skip == ("01",)
    write_profile(tmp_path, "extends: b.yaml\n", "a")
    write_profile(tmp_path, "extends: a.yaml\n", "b")
    with pytest.raises(ConfigError, match="cycle"):
        config.load_profile(tmp_path / "a.yaml")


def test_malformed_profiles_name_the_file(tmp_path):
    for text, expected in [("- a\n- b\n", "expected a mapping"), ("n: [1\n", "not valid YAML"),
                           ("notebooks: [1]\n", "'notebooks' must map")]:
        path = write_profile(tmp_path, text)
        with pytest.raises(ConfigError, match=expected) as err:
            config.load_profile(path)
        assert str(path) in str(err.value)


def test_notebook_numbers():
    assert config.notebook_number(3) == "03" and config.notebook_number("3") == "03"
    assert config.notebook_number("03_modality_gap.ipynb") == "03"
    with pytest.raises(ConfigError):
        config.notebook_number("modality")


def test_resolve_device():
    assert config.resolve_device("cpu") == "cpu"
    assert config.resolve_device("auto") in ("cpu", "cuda")
