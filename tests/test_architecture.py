"""The package's shape: no import cycles, layered dependencies, a light public API, docstrings, and a README that matches."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lcmc_core"
# Which layers a layer may import (shared modules, importable by every layer: SHARED).
SHARED = {"errors", "checks", "cache", "secrets", "memory", "environment", "outputs"}
ALLOWED = {"method": {"method"}, "text": {"text"}, "images": {"images", "method", "text"},
           "experiments": {"experiments", "method", "text", "images"},
           "reporting": {"reporting", "experiments", "method", "text", "images"},
           "harness": {"harness", "reporting", "experiments", "method", "text", "images"}}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """Every lcmc_core module ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found |= {c for c in candidates if c in modules and c != name}
    return found


def test_no_import_cycles_in_the_package():
    modules = _modules()
    graph = {m: _imports(m, p, modules) - {"lcmc_core"} for m, p in modules.items()}
    # a package importing its own submodules is not a cycle through them
    for m in graph:
        graph[m] = {d for d in graph[m] if not d.startswith(m + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if not state.get(d):
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if not state.get(m):
            visit(m)


def test_layers_import_only_the_layers_below_them():
    modules = _modules()
    for name, path in modules.items():
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in ALLOWED:
            continue
        for dep in _imports(name, path, modules):
            dparts = dep.split(".")
            if len(dparts) < 2 or dparts[1] in SHARED or dep == "lcmc_core":
                continue
            assert dparts[1] in ALLOWED[parts[1]], f"{name} imports {dep} (layer {parts[1]} may use {ALLOWED[parts[1]]})"


def test_every_module_says_what_it_is_for():
    for name, path in _modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc.split("\n")[0]) > 20, f"{name} has no one-line docstring"


@pytest.mark.slow
def test_import_lcmc_core_is_light_and_the_public_api_resolves_lazily():
    code = ("import sys, lcmc_core; assert 'torch' not in sys.modules, 'torch imported eagerly'; "
            "from lcmc_core import CoMC, load_clip, Params, load_dataset, LcmcError; print(CoMC.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    import lcmc_core
    for name in lcmc_core.__all__:
        assert getattr(lcmc_core, name) is not None
    with pytest.raises(AttributeError):
        lcmc_core.not_a_name  # noqa: B018


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, flags=re.M | re.S)
    assert m, f"README has no section '## {title}'"
    return m.group(1)


def _library_snippet() -> str:
    return re.search(r"```python\n(.*?)```", _readme_section("Use it as a library"), flags=re.S).group(1)


def test_the_readme_library_snippet_is_the_five_lines_a_student_expects():
    lines = [ln.split("#")[0].strip() for ln in _library_snippet().splitlines()]
    method = lines[lines.index("model = CoMC()"):]
    assert [ln.split("(")[0].split(" = ")[-1] for ln in method if ln] == [
        "CoMC", "model.fit", "model.decision_function", "model.predict", "print"]
    assert "mean_average_precision(scores" in method[-1]


#: what a light install (``pip install -e .``, no extras) does not have (pyyaml comes with open_clip's huggingface_hub)
NOT_IN_A_LIGHT_INSTALL = ("matplotlib", "seaborn", "tabulate", "papermill", "nbformat", "nbconvert", "nbclient",
                          "jupyterlab", "ipykernel", "ipywidgets", "IPython", "openai")


@pytest.mark.slow
def test_the_readme_library_snippet_runs_with_the_core_dependencies_only(tmp_path):
    """The snippet in a fresh interpreter where every notebook-stack and LLM package fails to import.

    Each such package is shadowed by a stub that raises ImportError when imported (as a missing
    package would); probes that only look for it (importlib.util.find_spec) still see a file.
    """
    stubs = tmp_path / "stubs"
    for name in NOT_IN_A_LIGHT_INSTALL:
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(f"raise ImportError('{name} is not part of a light install')\n")
    check = ("\nimport sys\nassert scores.shape[1] == 20 and labels.shape == scores.shape\n"
             f"assert not any(m.split('.')[0] in {NOT_IN_A_LIGHT_INSTALL!r} for m in sys.modules)\n")
    script = tmp_path / "snippet.py"
    script.write_text(_library_snippet() + check)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env={**__import__("os").environ, "PYTHONPATH": f"{stubs}:{ROOT}"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines()[-1].startswith("mAP "), out.stdout


def test_the_readme_layout_matches_the_tree():
    block = re.search(r"```\n(.*?)```", _readme_section("Layout"), flags=re.S).group(1)
    listed = set(re.findall(r"\b([a-z_0-9]+)\.py\b", block)) | set(re.findall(r"\b([a-z_0-9]+)/", block))
    actual = {p.stem for p in PACKAGE.rglob("*.py") if p.stem not in ("__init__", "__main__")}
    actual |= {p.name for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"}
    missing = actual - listed - {"assets", "model_configs"}
    assert not missing, f"the README's layout does not list {sorted(missing)}"
    outside = {"lcmc_core", "notebooks", "results", "tests", "benchmarks", "scripts", "toy", "study", "executed",
               "figures", "tables", "__init__", "__main__", "render_sprites"}
    words = {"global"}  # "global/local" in a description
    extra = {x for x in listed if x not in actual} - outside - words
    assert not extra, f"the README's layout lists {sorted(extra)}, which do not exist"
