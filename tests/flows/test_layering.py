"""The dependency rule: flows → plugins → core. Flows reach a backend only through its plugin (the `Deployer`,
`Server`, `Transcriber`, ... contracts), so a backend can be swapped or left uninstalled without touching flows.
Reads the installed package's source with `ast`: no module is imported, so nothing here can hide an import."""

from __future__ import annotations

import ast
from pathlib import Path

import asr_flywheel.flows
from asr_flywheel.backends.riva.deployer import RivaDeployer
from asr_flywheel.backends.triton.plugin import TritonDeployer
from asr_flywheel.plugins.contracts import Deployer, Server

FORBIDDEN = ("asr_flywheel.backends", "backends")


def backend_imports(path: Path) -> list[str]:
    """`line: module` for every import of a backend module, static or through importlib.import_module("...")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names = [a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        found += [f"{node.lineno}: {n}" for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    return found


def flows_imports() -> dict[str, list[str]]:
    root = Path(asr_flywheel.flows.__file__).parent
    found = {str(p.relative_to(root)): backend_imports(p) for p in sorted(root.rglob("*.py"))}
    return {name: hits for name, hits in found.items() if hits}


def test_flows_never_import_a_backend_module():
    assert flows_imports() == {}


def test_the_scan_sees_every_import_form(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "import asr_flywheel.backends.triton\n"
        "def f():\n"
        "    from asr_flywheel.backends.triton import server\n"
        "    importlib.import_module('asr_flywheel.backends.riva')\n"
        "from asr_flywheel.backends_extra import x\n"  # a different package: not a backend import
        "from asr_flywheel.plugins.manager import Plugins\n"
    )
    assert backend_imports(src) == [
        "1: asr_flywheel.backends.triton",
        "3: asr_flywheel.backends.triton",
        "4: asr_flywheel.backends.riva",
    ]


def test_built_in_deployers_implement_the_whole_contract():
    assert isinstance(TritonDeployer(), Deployer) and isinstance(TritonDeployer(), Server)
    assert isinstance(RivaDeployer(), Deployer) and not isinstance(RivaDeployer(), Server)


# --- the import graph of the whole product: no circles, no upward arrows ---------------------------------------

#: Layers from the inside out; a module may import its own layer or one further in, never one further out.
LAYERS = ("asr_flywheel", "asr_flywheel.plugins", "asr_flywheel.backends", "asr_flywheel.flows")


def product_modules() -> dict[str, Path]:
    """Every module of the installed product (`asr_flywheel` and the packages mapped into it), by dotted name."""
    import importlib.util

    found: dict[str, Path] = {}
    todo = list(LAYERS)  # the mapped packages are not folders of asr_flywheel/: start from each
    while todo:
        package = todo.pop()
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations is not None, package
        for location in spec.submodule_search_locations:
            for path in sorted(Path(location).iterdir()):
                if path.is_dir() and (path / "__init__.py").is_file() and f"{package}.{path.name}" not in LAYERS:
                    todo.append(f"{package}.{path.name}")
                elif path.suffix == ".py":
                    found[package if path.name == "__init__.py" else f"{package}.{path.stem}"] = path
    return found


def _runtime_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (annotations only: never imported when the code runs)."""
    skip = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    return [n for n in ast.walk(tree) if id(n) not in skip]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module → the product modules it imports when it runs, anywhere in its source (lazy imports inside functions
    too; imports for type annotations only are not arrows)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                module = ".".join([*base, node.module] if node.module else base)
                for alias in node.names:
                    target = f"{module}.{alias.name}"
                    targets.add(target if target in modules else module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def layer(module: str) -> int:
    return max(i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + "."))


def test_the_product_has_no_import_circles():
    modules = product_modules()
    assert {"asr_flywheel.flows.cli.scoring", "asr_flywheel.backends.nemo.trainer", "asr_flywheel.build.plan"} < set(
        modules
    )
    assert import_circles(import_graph(modules)) == []


def test_no_module_imports_a_layer_further_out():
    graph = import_graph(product_modules())
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer(b) > layer(a))
    assert upward == []


def test_the_graph_sees_lazy_imports_and_circles(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    (pkg / "c.py").write_text("import pkg.a\nif TYPE_CHECKING:\n    from pkg import b\n")
    modules = {"pkg": pkg / "__init__.py", **{f"pkg.{m}": pkg / f"{m}.py" for m in "abc"}}
    graph = import_graph(modules)
    assert graph["pkg.b"] == {"pkg.a"} and graph["pkg.c"] == {"pkg.a"}
    assert import_circles(graph) == [["pkg.a", "pkg.b"]]
