"""The package's shape, as ARCHITECTURE.md draws it: layers that import downward only, no cycles,
short functions, and deferred imports only where start-up time is the reason."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "whisperft"

# lowest first; a module's layer is that of its longest matching prefix
LAYERS = {
    "whisperft.errors": 1,
    "whisperft.io": 1,
    "whisperft.extras": 1,
    "whisperft.hub": 1,
    "whisperft.log": 1,
    "whisperft.audio": 2,
    "whisperft.checks": 2,
    "whisperft.features": 2,
    "whisperft.languages": 2,
    "whisperft.text": 2,
    "whisperft.metrics": 2,
    "whisperft.synth": 2,
    "whisperft.data": 3,
    "whisperft.models": 4,
    "whisperft.config": 4,
    "whisperft.prepare": 5,
    "whisperft.train": 5,
    "whisperft.evaluate": 5,
    "whisperft.transcribe": 5,
    "whisperft.label": 5,
    "whisperft.export": 5,
    "whisperft.doctor": 5,
    "whisperft.publish": 5,
    "whisperft.cli": 6,
    "whisperft.serve": 6,
    "whisperft.serve_request": 6,
    "whisperft": 0,  # the package's __init__ (version only)
}
STAGE_IMPORTS = {
    ("whisperft.evaluate", "whisperft.prepare"),  # eval of a raw source runs prepare first
    ("whisperft.label", "whisperft.transcribe"),  # labelling is transcribing, then judging each clip
    ("whisperft.label", "whisperft.export"),  # ... on faster-whisper, converted once by export's converter
    ("whisperft.prepare", "whisperft.transcribe"),  # long recordings are transcribed to align their text
    ("whisperft.prepare", "whisperft.export"),  # ... on faster-whisper, converted once by export's converter
}
DEFERRABLE = (
    "torch",
    "transformers",
    "ctranslate2",
    "faster_whisper",
    "datasets",
    "accelerate",
    "rich",
    "gradio",
    "matplotlib",
    "bitsandbytes",
    "gguf",  # the export extras: optional, so imported where used
    "onnx",
    "onnxruntime",
    "pywhispercpp",
    "whisper",
    "ray",  # the sweep extra (Ray Tune, and Optuna through it)
)
MAX_FUNCTION_LINES = 80


def modules(package: Path = PACKAGE) -> dict[str, ast.Module]:
    """Every module of ``package`` by dotted name, parsed."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


def layer(module: str) -> tuple[int, str]:
    """(layer, the LAYERS key that placed it)."""
    key = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[key], key


def imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """(imported module, deferred?) for every import of whisperft's own modules."""
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("whisperft"):
            found.append((node.module, id(node) not in top))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) not in top) for a in node.names if a.name.startswith("whisperft")]
    return found


def test_every_module_has_a_layer() -> None:
    for name in modules():
        assert layer(name)[0] > 0 or name == "whisperft", name


def upward_imports(mods: dict[str, ast.Module]) -> list[str]:
    """Each import of a higher layer, and each import between stages that ``STAGE_IMPORTS`` does not allow."""
    wrong = []
    for name, tree in mods.items():
        mine, my_key = layer(name)
        for target, _ in imports(tree):
            theirs, their_key = layer(target)
            if theirs > mine:
                wrong.append(f"{name} (layer {mine}) imports {target} (layer {theirs})")
            elif theirs == mine == 5 and my_key != their_key and (my_key, their_key) not in STAGE_IMPORTS:
                wrong.append(f"stage {my_key} imports stage {their_key}")
    return wrong


def import_cycle(mods: dict[str, ast.Module]) -> list[str] | None:
    """The first import cycle among ``mods`` (its modules, the first repeated at the end), else None."""
    graph = {name: {t for t, _ in imports(tree) if t in mods and t != name} for name, tree in mods.items()}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, node])
                if found:
                    return found
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            found = visit(name, [])
            if found:
                return found
    return None


def test_layers_import_downward_only() -> None:
    wrong = upward_imports(modules())
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    cycle = import_cycle(modules())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# Modules that may defer their own imports: the CLI (so --help does not wait for torch), and the
# engine switch, which loads either the torch engine or the CTranslate2 one and must not pay for both, and the
# stages' requests, which the CLI imports when it starts (for their defaults) and which check a language only
# when asked to.
MAY_DEFER = {
    "whisperft.cli",
    "whisperft.checks",
    "whisperft.transcribe.load",
    "whisperft.transcribe.request",
    "whisperft.evaluate.request",
    "whisperft.prepare.request",
    "whisperft.export.request",
    "whisperft.train.request",
    "whisperft.serve_request",
    "whisperft.label.request",
}


def test_own_modules_are_imported_at_the_top_except_by_the_cli() -> None:
    deferred = [
        f"{name} defers {target}"
        for name, tree in modules().items()
        if name not in MAY_DEFER
        for target, lazy in imports(tree)
        if lazy
    ]
    assert not deferred, "\n".join(deferred)


def test_deferred_third_party_imports_are_the_slow_ones() -> None:
    wrong = []
    for name, tree in modules().items():
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if mod and not mod.startswith(("whisperft", "__future__", *DEFERRABLE)):
                    wrong.append(f"{name}:{node.lineno} defers {mod}")
    assert not wrong, "\n".join(wrong)


def test_no_function_is_longer_than_about_80_lines() -> None:
    long = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES  # type: ignore[operator]
    ]
    assert not long, "\n".join(long)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The checks above must be able to fail: on a small package named like ours, with a data module that
    imports the train stage (upward) and two models modules that import each other (a cycle), both are found,
    and the well-behaved module is not blamed."""
    pkg = tmp_path / "whisperft"
    for rel, text in {
        "__init__.py": "",
        "data/__init__.py": "",
        "data/store.py": "from whisperft.train.loop import fit\n",
        "models/__init__.py": "",
        "models/a.py": "from whisperft.models.b import g\n",
        "models/b.py": "def g():\n    from whisperft.models.a import f\n",
        "train/__init__.py": "",
        "train/loop.py": "from whisperft.data.store import FeatureStore\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    mods = modules(pkg)
    assert upward_imports(mods) == ["whisperft.data.store (layer 3) imports whisperft.train.loop (layer 5)"]
    assert import_cycle(mods) == ["whisperft.data.store", "whisperft.train.loop", "whisperft.data.store"]
    del mods["whisperft.data.store"]
    assert import_cycle(mods) == ["whisperft.models.a", "whisperft.models.b", "whisperft.models.a"]


TEST_ONLY = ("devkit", "tests", "benchmarks", "demo")  # beside the package, never in the wheel


def _reached(tree: ast.Module, mods: dict[str, ast.Module]) -> set[str]:
    """whisperft modules ``tree`` imports, at the top or deferred (``from whisperft.x import y`` reaches x.y
    when that is a module)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("whisperft"):
            out |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out & set(mods)


def test_the_wheel_ships_no_test_only_code() -> None:
    """The packages setuptools builds from pyproject are whisperft's; none of their modules imports the test-only
    folders (the wheel would break without them); and every module is reached from the CLI or an export target
    (``export.TARGETS``, imported by name). A module that only tests, the demo or benchmarks import, such as a tiny
    random model or synthesized corpora, belongs in ``devkit/``."""
    from setuptools.config.pyprojecttoml import read_configuration  # the build backend's own reading

    from whisperft.export.targets import TARGETS

    packages = read_configuration(PACKAGE.parent / "pyproject.toml")["tool"]["setuptools"]["packages"]
    assert "whisperft" in packages and all(p.split(".")[0] == "whisperft" for p in packages), packages
    mods = modules()
    uses = [
        f"{name} imports {node.module if isinstance(node, ast.ImportFrom) else node.names[0].name}"
        for name, tree in mods.items()
        for node in ast.walk(tree)
        if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in TEST_ONLY)
        or (isinstance(node, ast.Import) and any(a.name.split(".")[0] in TEST_ONLY for a in node.names))
    ]
    assert not uses, "\n".join(uses)
    seen: set[str] = set()
    todo = ["whisperft", "whisperft.cli", *(f"whisperft.export.{module}" for module, *_ in TARGETS.values())]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            parts = name.split(".")
            todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # a submodule runs its package first
            todo += _reached(mods[name], mods)
    assert not set(mods) - seen, f"shipped but reached only from outside the package: {sorted(set(mods) - seen)}"


def _module_rows() -> dict[str, int]:
    """ARCHITECTURE.md's module table: ``transcribe/decoding`` -> its layer."""
    rows = re.findall(r"^\| (\d) \| `([a-z0-9_/]+)` \|", (PACKAGE.parent / "ARCHITECTURE.md").read_text(), re.M)
    return {name: int(number) for number, name in rows}


def test_architecture_md_names_every_module_in_its_layer() -> None:
    listed = _module_rows()
    ours = {name.removeprefix("whisperft.").replace(".", "/"): name for name in modules() if name != "whisperft"}
    packages = {p.parent.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE}
    missing = sorted(set(ours) - set(listed) - packages)
    assert not missing, f"not in ARCHITECTURE.md's module table: {missing}"
    gone = sorted(set(listed) - set(ours))
    assert not gone, f"ARCHITECTURE.md names modules that do not exist: {gone}"
    wrong = {m: (n, layer(ours[m])[0]) for m, n in listed.items() if layer(ours[m])[0] != n}
    assert not wrong, f"ARCHITECTURE.md puts these in another layer (page, test_architecture): {wrong}"


def _is_table(node: ast.stmt) -> bool:
    """A module- or class-level constant whose value is a literal dict, list, tuple or set."""
    value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
    return isinstance(value, (ast.Dict, ast.List, ast.Tuple, ast.Set))


def fmt_skips_off_tables(package: Path = PACKAGE) -> list[str]:
    """``path:line`` of each ``# fmt: skip`` that is not on a data table: hand-packed code, which should be
    formatted, and split where it is then too long."""
    wrong = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        tables = [n for n in tree.body if _is_table(n)]
        tables += [n for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for n in c.body if _is_table(n)]
        ends = {n.end_lineno for n in tables}
        for number, line in enumerate(text.splitlines(), 1):
            if "# fmt: skip" in line and number not in ends:
                wrong.append(f"{path.relative_to(package.parent)}:{number}")
    return wrong


def test_fmt_skip_only_on_data_tables(tmp_path: Path) -> None:
    wrong = fmt_skips_off_tables()
    assert not wrong, "\n".join(wrong)
    pkg = tmp_path / "whisperft"
    pkg.mkdir()
    (pkg / "a.py").write_text(
        "T = {1: 2,   3: 4}  # fmt: skip\n\n\ndef f():\n    return g(1,\n             2)  # fmt: skip\n"
    )
    assert fmt_skips_off_tables(pkg) == ["whisperft/a.py:6"]
