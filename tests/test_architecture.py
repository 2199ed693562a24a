"""The shape of the package: the core runs headless, and imports run one way."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import tuimail

CORE_MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(tuimail.__path__, "tuimail.")
    if not info.name.startswith("tuimail.ui") and info.name != "tuimail.__main__"
)


def test_core_modules_exist() -> None:
    assert {"tuimail.session", "tuimail.cli", "tuimail.transcript"} <= set(CORE_MODULES)


def test_core_imports_without_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(leaked))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"core imported textual: {result.stdout}"


def test_send_command_does_not_import_textual_or_keyring() -> None:
    """`tuimail send --server` pays only for what it uses (start-up time vs swaks)."""
    code = (
        "import sys\n"
        "from tuimail import cli\n"
        "try:\n"
        "    cli.main(['send', '--server', '127.0.0.1:1', '--security', 'none', '--from',"
        " 'a@example.test', '--to', 'b@example.test', '--body', 'x', '--quiet', '--timeout', '1'])\n"
        "finally:\n"
        "    print('\\n' + ','.join(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('textual', 'keyring', 'cryptography'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.splitlines()[-1] == ""


def test_app_start_up_leaves_the_smtp_client_and_server_for_later() -> None:
    """The first screen does not wait for aiosmtplib, aiosmtpd or the outbox.

    They are imported by the first send and by the worker that starts the
    sandbox (start-up time against a minimal Textual app: docs/performance.md).
    """
    code = (
        "import sys\n"
        "import tuimail.ui.app\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('aiosmtplib', 'aiosmtpd', 'keyring', 'cryptography')"
        " or m in ('tuimail.session', 'tuimail.outbox', 'tuimail.sandbox'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def test_exit_codes_cover_every_stage() -> None:
    from tuimail.cli import exitcodes
    from tuimail.stages import Stage

    assert set(exitcodes.STAGE_CODES) == set(Stage)
    assert all(exitcodes.for_stage(stage) == exitcodes.STAGE_CODES[stage] for stage in Stage)


def test_every_package_is_in_the_wheel() -> None:
    """pyproject.toml names packages one by one: a new one left out installs broken."""
    root = Path(tuimail.__file__).parent
    pyproject = tomllib.loads((root.parent / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(("tuimail", *init.parent.relative_to(root).parts))
        for init in root.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Which of ``package``'s modules each of its modules imports, read from the source.

    Every ``import`` and ``from ... import`` counts, wherever it stands: at the
    top, inside a function, or under ``if TYPE_CHECKING:`` (a type-only import
    is still a dependency a reader has to follow). ``from pkg import name``
    points at the submodule ``pkg.name`` when there is one, else at ``pkg``.
    """
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path

    def owner(name: str) -> str | None:
        """The module that defines ``name``: itself, or the closest package above it."""
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                    base = f"{anchor}.{base}" if base else anchor
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                found = owner(target) if target.split(".")[0] == package else None
                if found is not None and found != name:
                    graph[name].add(found)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import one another, in a ring (Tarjan's strongly
    connected components of more than one module), each sorted."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in order:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], order[imported])
        if low[module] == order[module]:
            component = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return sorted(cycles)


def describe_cycles(graph: dict[str, set[str]], cycles: list[list[str]]) -> str:
    lines = []
    for cycle in cycles:
        lines.append("cycle: " + ", ".join(cycle))
        lines += [
            f"    {module} -> {imported}"
            for module in cycle
            for imported in sorted(graph[module] & set(cycle))
        ]
    return "\n".join(lines)


def test_the_import_picture_has_no_cycle() -> None:
    """Dependencies run one way: no module imports, even for types only, one that imports it.

    The UI's own rule (screens, widgets and the model never import the app,
    even where that is no cycle) is tests/test_ui_model.py's
    ``test_screens_widgets_and_the_model_never_import_the_app``.
    """
    graph = import_graph(Path(tuimail.__file__).parent, "tuimail")
    assert {"tuimail.sandbox.server", "tuimail.ui.app"} <= set(graph)
    cycles = import_cycles(graph)
    assert not cycles, "modules that import one another:\n" + describe_cycles(graph, cycles)


def test_the_import_picture_counts_type_only_and_late_imports(tmp_path: Path) -> None:
    """The reader behind the test above sees every form of import a cycle can hide in."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    sources = {
        "__init__.py": "",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n",
        "b.py": "def late():\n    from . import c\n",
        "c.py": "import pkg.a\n",
        "d.py": "from pkg.sub import e\n",
        "sub/__init__.py": "",
        "sub/e.py": "from ..d import thing\n",
        "lone.py": "import os\nfrom pkg import a\n",
    }
    for name, text in sources.items():
        (package / name).write_text(text, encoding="utf-8")
    graph = import_graph(package, "pkg")
    assert graph["pkg.b"] == {"pkg.c"}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.d", "pkg.sub.e"]]
    assert "pkg.a -> pkg.b" in describe_cycles(graph, import_cycles(graph))
