"""The environment: requirements.lock pins every package, agrees with pyproject.toml and environment.yml, and is installed."""
import os
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

from lcmc_core.environment import (
    INSTALLER_TOOLS,
    PROJECT,
    canonical_name,
    find_lock,
    lock_differences,
    lock_summary,
    oldest_allowed,
    read_lock,
)
from lcmc_core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
#: the extras `make setup` installs (the Makefile's EXTRAS)
SETUP_EXTRAS = ("notebooks", "llm", "dev")


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _setup_requirements() -> list[Requirement]:
    project = _project()
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in SETUP_EXTRAS:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def test_the_makefile_installs_the_extras_the_lock_was_resolved_for():
    text = (ROOT / "Makefile").read_text()
    assert f"EXTRAS := {','.join(SETUP_EXTRAS)}" in text
    assert "-r $(LOCK)" in text and "--no-deps -e ." in text


def test_every_line_of_the_lock_pins_one_version():
    pins = read_lock(LOCK)
    assert len(pins) > 100                               # transitive packages included
    for line in LOCK.read_text().splitlines():
        req = line.split("#", 1)[0].strip()
        if req:
            specs = list(Requirement(req).specifier)
            assert len(specs) == 1 and specs[0].operator == "==", line


def test_the_lock_satisfies_every_dependency_of_pyproject():
    pins = read_lock(LOCK)
    for req in _setup_requirements():
        name = canonical_name(req.name)
        assert name in pins, f"{req} is not in requirements.lock: run make lock"
        assert pins[name].version in req.specifier, f"requirements.lock has {name}=={pins[name].version}, outside {req}"


def test_environment_yml_installs_exactly_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    assert [d for d in deps if isinstance(d, str)] == ["python=3.11", "pip"]
    assert [d["pip"] for d in deps if isinstance(d, dict)] == [["-r requirements.lock", "-e ."]]
    pins = read_lock(LOCK, {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux",
                            "platform_machine": "x86_64", "platform_system": "Linux", "implementation_name": "cpython",
                            "platform_python_implementation": "CPython", "os_name": "posix"})
    assert {"torch", "numpy", "open-clip-torch", "openai", "papermill"} <= set(pins)


@pytest.mark.skipif(os.environ.get("LCMC_ENVIRONMENT") == "latest",
                    reason="make test-latest installs the newest allowed releases on purpose")
def test_the_installed_environment_is_exactly_the_lock():
    diffs = lock_differences(LOCK)
    assert not diffs, ("the environment differs from requirements.lock (make setup installs it; make lock updates it): "
                       + "; ".join(map(str, diffs)))


def test_a_package_missing_from_the_lock_or_not_pinned_is_found(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("numpy==2.4.6\n    # via pandas\nscipy==1.17.1 ; python_version < '3'\n")
    diffs = {d.name: d for d in lock_differences(lock, {"numpy": "2.4.6", "pandas": "3.1.1", "pip": "25.0",
                                                        PROJECT: "0.3.0"})}
    assert set(diffs) == {"pandas"} and diffs["pandas"].locked is None      # installed, not in the lock
    assert str(diffs["pandas"]) == "pandas 3.1.1 (not in the lock)"
    assert str(lock_differences(lock, {})[0]) == "numpy missing (lock: 2.4.6)"   # the marker keeps scipy out
    assert str(lock_differences(lock, {"numpy": "2.4.5"})[0]) == "numpy 2.4.5 (lock: 2.4.6)"
    assert "pip" in INSTALLER_TOOLS
    for bad, match in (("numpy>=2\n", "not pinned to one version"), ("numpy\n", "not pinned"),
                       ("numpy==2.*\n", "not pinned"), ("-e .\n", "pip options"), ("numpy===x y\n", "not a requirement"),
                       ("numpy==1\nnumpy==2\n", "pinned twice")):
        lock.write_text(bad)
        with pytest.raises(ConfigError, match=match):
            read_lock(lock)
    with pytest.raises(ConfigError, match="cannot read the lock file"):
        read_lock(tmp_path / "none.lock")


def test_the_manifest_records_the_lock_and_what_differs():
    summary = lock_summary(find_lock())
    assert summary["lock"] == "requirements.lock" and len(summary["lock_sha256"]) == 64
    assert isinstance(summary["differs_from_lock"], list)
    assert lock_summary(None) == {"lock": None, "lock_sha256": None, "differs_from_lock": None}


def test_oldest_allowed_reads_the_lower_bound():
    assert oldest_allowed("openai", ["torch>=2.1", "openai>=1.55.3,<4; extra == 'llm'"]) == "openai==1.55.3"
    with pytest.raises(ConfigError, match="no lower bound"):
        oldest_allowed("openai", ["openai<4"])
    with pytest.raises(ConfigError, match="not a dependency"):
        oldest_allowed("nothing", ["openai>=1"])
    declared = Requirement(next(r for r in _project()["optional-dependencies"]["llm"] if r.startswith("openai")))
    assert oldest_allowed("openai") == f"openai=={min(s.version for s in declared.specifier if s.operator == '>=')}"
