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


def project_files() -> list[Path]:
    """Our Python files: not a virtual environment or anything else hidden inside the checkout."""
    return [p for p in ROOT.rglob("*.py") if not p.relative_to(ROOT).parts[0].startswith(".")]


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
    outside = [p for p in project_files() if p.relative_to(ROOT).parts[0] not in ("ui", "tests")
               and p.name != "app.py"]
    assert [str(p.relative_to(ROOT)) for p in outside if any(n.split(".")[0] == "gradio" for n in imports(p))] == []


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_graph() -> dict[str, set[str]]:
    """Module -> our modules it imports (at the top or inside a function: a circle is a circle)."""
    files = [p for p in project_files() if p.relative_to(ROOT).parts[0] in OURS + ("lab", "testkit")
             or p.name == "app.py"]
    files = [p for p in files if "migrations" not in p.parts]
    known = {module_name(p) for p in files}
    graph = {}
    for p in files:
        targets = set()
        for name in imports(p):
            while name and name not in known:  # `from a.b import c` names a.b; `import a.b.c` may name a.b.c
                name = name.rpartition(".")[0]
            if name and name != module_name(p):
                targets.add(name)
        graph[module_name(p)] = targets
    return graph


def test_no_import_circles():
    graph, circles = our_graph(), []
    for start in graph:  # a depth-first walk from each module back to itself
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    circles.append(" -> ".join(path + [start]))
                elif nxt not in seen and not start.startswith(nxt + ".") and not nxt.startswith(start + "."):
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert sorted(set(circles)) == []


def test_benches_never_import_tests_and_the_app_never_imports_the_lab():
    assert offending("bench", lambda n: n.split(".")[0] == "tests") == []
    runtime = [f for folder in ("core", "backend", "storage", "ui")
               for f in offending(folder, lambda n: n.split(".")[0] in ("lab", "tests", "bench", "testkit"))]
    assert runtime == []
    assert [n for n in imports(ROOT / "app.py") if n.split(".")[0] in ("lab", "tests", "bench", "testkit")] == []
