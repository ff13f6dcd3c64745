"""The layers stay apart, checked on the imports themselves (ast), not by convention.

core imports nothing of ours; storage imports only core and storage; ui reaches storage only
through services; engines know nothing of harmony or Gradio; harmony knows nothing of engines or
Gradio; Gradio appears only in ui/ and app.py.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("core", "backend", "storage", "ui", "app", "tests", "bench")


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def offending(folder: str, forbidden) -> list[str]:
    return [f"{p.relative_to(ROOT)} imports {name}" for p in modules(folder) for name in imports(p)
            if forbidden(name)]


def ours(name: str) -> bool:
    return name.split(".")[0] in OURS


@pytest.mark.parametrize("folder, allowed", [
    ("core", ("core",)),
    ("storage", ("core", "storage")),
    ("ui", ("core", "backend", "ui")),
])
def test_each_layer_imports_only_what_is_below_it(folder, allowed):
    assert offending(folder, lambda n: ours(n) and n.split(".")[0] not in allowed) == []


def test_engines_know_nothing_of_harmony_or_gradio():
    engines = [p for p in modules("backend/engines") if p.name != "choose.py"]  # the chooser wires them
    bad = [f"{p.name} imports {n}" for p in engines for n in imports(p)
           if n.startswith(("backend.harmony", "gradio", "ui", "storage"))]
    assert bad == []


def test_harmony_knows_nothing_of_engines_or_gradio():
    assert offending("backend/harmony", lambda n: n.startswith(("backend.engines", "gradio", "ui", "storage"))) == []


def test_gradio_only_in_ui_and_app():
    outside = [p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in ("ui", "tests")
               and p.name != "app.py"]
    assert [str(p.relative_to(ROOT)) for p in outside if any(n.split(".")[0] == "gradio" for n in imports(p))] == []
