"""The shape of the code, read from the source with ``ast`` so that it stays true:

- imports point one way, down the layers: cli -> (tune, course, training, files, data) ->
  (optim, nn) -> kernels; no module imports one of a higher layer, whether at the top of the
  file or inside a function;
- there is no import cycle between fastnn's modules (function-level imports included);
- ``kernels/`` imports nothing of fastnn outside itself, and no library module imports the
  command line or the ``fastnn`` package root;
- no file of the package is longer than 600 lines.
"""

import ast
from pathlib import Path

import pytest

import fastnn
import fastnn.kernels

PACKAGE = Path(fastnn.__file__).parent
KERNELS = Path(fastnn.kernels.__file__).parent  # kernels/, installed as fastnn.kernels

# Lower layers first. A module may import modules of its own package (fastnn.nn.linear imports
# fastnn.nn.module) and of any lower layer, never of its own layer's other packages or above.
LAYERS = [
    ["fastnn.kernels"],
    ["fastnn.errors", "fastnn._version", "fastnn._table"],
    ["fastnn._checks", "fastnn._atomic", "fastnn._npz", "fastnn.plotting"],
    ["fastnn.threads"],
    ["fastnn.nn", "fastnn.data"],
    ["fastnn.optim"],
    ["fastnn.files"],
    ["fastnn.training"],
    ["fastnn.tune", "fastnn.warmup"],
    ["fastnn.course", "fastnn.sklearn"],
    ["fastnn.onnx"],
    ["fastnn.cli"],
    ["fastnn", "fastnn.__main__"],
]
MAX_LINES = 600


def _modules():
    """{dotted name: (path, is_package)} of every module of fastnn and its kernels."""
    found = {}
    for root, prefix in ((PACKAGE, "fastnn"), (KERNELS, "fastnn.kernels")):
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            found[".".join([prefix, *parts])] = (path, is_package)
    return found


MODULES = _modules()


def _imports(name):
    """The fastnn modules that module ``name`` imports, anywhere in its source."""
    path, is_package = MODULES[name]
    here = name.split(".") if is_package else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            # "from package import module" imports that module; "from module import name" the
            # module itself.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        out.update(t for t in targets if t == "fastnn" or t.startswith("fastnn."))
    return out


GRAPH = {name: _imports(name) for name in MODULES}


def _layer(name):
    """(layer index, package) of module ``name``: its longest prefix in ``LAYERS``."""
    best = None
    for i, group in enumerate(LAYERS):
        for prefix in group:
            if (name == prefix or name.startswith(prefix + ".")) and (
                best is None or len(prefix) > len(best[1])
            ):
                best = (i, prefix)
    assert best is not None, f"{name} is in no layer of LAYERS: add it there"
    return best


def test_every_module_is_placed_in_a_layer():
    for name in MODULES:
        _layer(name)
    assert len(MODULES) > 60  # the walk found the package


def wrong_arrows(graph):
    """The imports of ``graph`` ({module: imported modules}) against the layers."""
    wrong = []
    for name, targets in graph.items():
        layer, package = _layer(name)
        for target in targets:
            other_layer, other_package = _layer(target)
            if other_package != package and other_layer >= layer:
                wrong.append(f"{name} -> {target}")
    return sorted(wrong)


def find_cycles(graph):
    """Import cycles of ``graph``, each as a list of modules that ends where it starts."""
    # Depth-first search with colours: reaching a module still on the stack closes a cycle.
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


def test_every_import_names_a_module_of_fastnn():
    for name, targets in GRAPH.items():
        for target in targets:
            assert target in MODULES, f"{name} imports {target}, which does not exist"


def test_imports_point_down_the_layers():
    wrong = wrong_arrows(GRAPH)
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_library_module_imports_the_cli_or_the_root():
    for name, targets in GRAPH.items():
        if not name.startswith("fastnn.cli") and name not in ("fastnn", "fastnn.__main__"):
            assert not any(t == "fastnn.cli" or t.startswith("fastnn.cli.") for t in targets), name
        if name != "fastnn.__main__":
            assert "fastnn" not in targets, f"{name} imports the fastnn package root"


def test_kernels_import_nothing_of_fastnn():
    for name, targets in GRAPH.items():
        if name.startswith("fastnn.kernels"):
            outside = [t for t in targets if not t.startswith("fastnn.kernels")]
            assert not outside, f"{name} imports {outside}"


def test_no_import_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checks_catch_what_they_are_for():
    # On a made-up graph: the library importing the CLI inside a function (what fastnn.tune
    # once did), a cycle through it, and a package importing a sibling of its own layer.
    graph = {
        "fastnn.tune.search": {"fastnn.cli.tune"},
        "fastnn.cli.tune": {"fastnn.tune.search"},
        "fastnn.nn.module": {"fastnn.data.sources"},
        "fastnn.nn.linear": {"fastnn.nn.module", "fastnn.kernels.affine"},
    }
    assert wrong_arrows(graph) == [
        "fastnn.nn.module -> fastnn.data.sources",
        "fastnn.tune.search -> fastnn.cli.tune",
    ]
    assert find_cycles(graph) == [["fastnn.cli.tune", "fastnn.tune.search", "fastnn.cli.tune"]]
    source = "def f():\n    from ..cli import main\n"
    tree = ast.parse(source)
    assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))  # found inside functions


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith("fastnn.kernels")))
def test_files_stay_short(name):
    lines = MODULES[name][0].read_text().count("\n")
    assert lines <= MAX_LINES, f"{name}: {lines} lines; split it (at most {MAX_LINES})"
