"""environment.yml (conda) and pyproject.toml (pip) must describe the same dependencies."""
import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from the PyPI names
CONDA_TO_PYPI = {"pytorch": "torch", "open-clip-torch": "open-clip-torch"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(spec: str) -> str:
    return _norm(re.split(r"[\s<>=!~;\[]", spec.strip(), maxsplit=1)[0])


def pyproject_deps() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {_name(d) for d in project["dependencies"]}
    deps |= {_name(d) for d in project["optional-dependencies"]["dev"]}
    return deps


def conda_env():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_deps() -> set[str]:
    names = set()
    for dep in conda_env()["dependencies"]:
        if isinstance(dep, str):
            name = _name(dep)
            if name not in ("python", "pip"):
                names.add(_norm(CONDA_TO_PYPI.get(name, name)))
    return names


def test_environment_yml_lists_the_same_packages_as_pyproject():
    py, conda = pyproject_deps(), conda_deps()
    assert py - conda == set(), f"in pyproject.toml but not environment.yml: {sorted(py - conda)}"
    assert conda - py == set(), f"in environment.yml but not pyproject.toml: {sorted(conda - py)}"


def test_environment_yml_uses_conda_forge_and_installs_this_package():
    env = conda_env()
    assert env["channels"] == ["conda-forge"]
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_sections == [["-e ."]]


def test_no_machine_specific_pins():
    # plain specs only: no local paths, URLs or exact pins that tie the project to one machine
    text = (ROOT / "pyproject.toml").read_text() + (ROOT / "environment.yml").read_text()
    assert "file://" not in text and "/work/" not in text and "==" not in text


def test_pyproject_name_parser_sees_every_dependency():
    # guard against the parser silently dropping entries
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert len(pyproject_deps()) == len(project["dependencies"]) + len(project["optional-dependencies"]["dev"])
