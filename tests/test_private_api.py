"""The private names of other packages that tuimail uses: all listed, all present.

See tuimail/private_api.py. The presence test runs on whatever versions are
installed, so ``make test-min`` checks the lowest allowed ones too.
"""

from __future__ import annotations

import ast
import importlib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as ServerSMTP

from tests.smtpservers import ServerThread, Sink
from tuimail import private_api
from tuimail.private_api import LIBRARIES, OTHER_PACKAGES, PRIVATE_NAMES, Kind, missing_names

TUIMAIL = Path(__file__).resolve().parent.parent / "tuimail"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


# -- present in the installed versions --------------------------------------------------


class _Remembered(ServerSMTP):
    """aiosmtpd's server, remembering itself once a client is connected."""

    live: list[ServerSMTP] = []

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        _Remembered.live.append(self)


@pytest.fixture
def live_server(servers: ServerThread) -> Iterator[ServerSMTP]:
    """A real aiosmtpd session on loopback: instance attributes exist only on one."""
    _Remembered.live.clear()
    port = servers.smtp(Sink(), server_class=_Remembered)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.settimeout(5)
        assert client.recv(1024).startswith(b"220")  # greeted: the session is set up
        yield _Remembered.live[0]


def _live_objects(server: ServerSMTP) -> dict[str, Any]:
    """An object of each class whose listed names are set per instance."""
    tls = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
    return {"aiosmtpd.smtp.SMTP": server, "ssl.SSLObject": tls}


def test_every_listed_name_exists_in_the_installed_versions(live_server: ServerSMTP) -> None:
    instance_owners = {e.owner for e in PRIVATE_NAMES if e.kind is Kind.INSTANCE_ATTRIBUTE}
    live = _live_objects(live_server)
    assert instance_owners == set(live)  # the live objects cover them all
    missing = missing_names(live)
    versions = ", ".join(f"{lib} {importlib.import_module(lib).__version__}" for lib in LIBRARIES)
    assert missing == [], (
        f"{versions} lack private names tuimail uses: {', '.join(missing)}. "
        "Adapt the code that uses them (see tuimail/private_api.py) before moving the pin."
    )


def test_a_missing_name_is_reported(
    live_server: ServerSMTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check itself fails when a name goes away, for each kind of name."""
    gone = tuple(
        replace(entry, name=entry.name + "_gone")
        for entry in {e.kind: e for e in PRIVATE_NAMES}.values()
    )
    monkeypatch.setattr(private_api, "PRIVATE_NAMES", PRIVATE_NAMES + gone)
    missing = private_api.missing_names(_live_objects(live_server))
    assert sorted(missing) == sorted(entry.qualified for entry in gone)


def test_unexported_names_are_not_in_the_public_api() -> None:
    """An entry for a name the package exports would overstate what tuimail depends on."""
    for entry in PRIVATE_NAMES:
        if entry.kind is Kind.UNEXPORTED:
            package = importlib.import_module(entry.library)
            assert entry.name not in getattr(package, "__all__", ()), entry


def test_the_count_of_private_names_used(capsys: pytest.CaptureFixture[str]) -> None:
    """The figure docs/upstream.md cites: one per listed name (HELP's decorator copy counts once).

    Shown with ``pytest -s`` and in the message of the assertion below, so it
    can be read off any run.
    """
    names = {(entry.library, entry.owner.split(".smtp_")[0], entry.name) for entry in PRIVATE_NAMES}
    per_library = {
        lib: sum(1 for name in names if name[0] == lib) for lib in LIBRARIES + OTHER_PACKAGES
    }
    line = (
        f"private names of other packages used: {len(names)} ("
        + ", ".join(f"{lib} {count}" for lib, count in per_library.items())
        + ")"
    )
    with capsys.disabled():
        print(f"\n{line}")
    assert per_library["aiosmtplib"] <= 2, line


def test_every_unexported_name_tuimail_imports_is_listed() -> None:
    """A name imported from a submodule and left out of the package's ``__all__`` is listed.

    Only packages that declare ``__all__`` say what they export (aiosmtplib
    does; aiosmtpd does not, and its private names are caught by the scan above).
    """
    listed = {(e.owner, e.name) for e in PRIVATE_NAMES if e.kind is Kind.UNEXPORTED}
    unlisted = []
    for module, name in sorted(_imported_from_libraries()):
        package = importlib.import_module(module.split(".")[0])
        exported = getattr(package, "__all__", None)
        if module == package.__name__ or exported is None or _private(name):
            continue
        if name not in exported and (module, name) not in listed:
            unlisted.append(f"{module}.{name}")
    assert unlisted == [], f"add to tuimail/private_api.py as Kind.UNEXPORTED: {unlisted}"


def test_every_entry_says_where_and_why() -> None:
    for entry in PRIVATE_NAMES:
        assert entry.library in LIBRARIES + OTHER_PACKAGES, entry
        assert entry.used_in.startswith("tuimail/") and entry.why, entry
        assert (TUIMAIL.parent / entry.used_in.split(",")[0]).is_file(), entry


# -- complete: tuimail uses no private name that is not listed ---------------------------


@dataclass(frozen=True)
class Use:
    path: str
    line: int
    name: str


def _library_private_names() -> dict[str, set[str]]:
    """Every private name each library defines or uses in its own source, to its modules."""
    import pkgutil

    found: dict[str, set[str]] = {}
    for library in LIBRARIES:
        package = importlib.import_module(library)
        for info in pkgutil.walk_packages(package.__path__, f"{library}."):
            if ".tests" in info.name or "docs" in info.name or info.name.endswith("__main__"):
                continue
            spec = importlib.util.find_spec(info.name)
            if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
                continue
            tree = ast.parse(Path(spec.origin).read_text("utf-8"))
            _collect(tree, info.name, found)
    return found


def _collect(node: ast.AST, owner: str, found: dict[str, set[str]]) -> None:
    """Record each private name under the module or class (``aiosmtpd.smtp.SMTP``) it is in."""
    for child in ast.iter_child_nodes(node):
        for name in _names_in(child):
            if _private(name):
                found.setdefault(name, set()).add(owner)
        inner = f"{owner}.{child.name}" if isinstance(child, ast.ClassDef) else owner
        _collect(child, inner, found)


def _names_in(node: ast.AST) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return [node.id]
    return []


def _uses_in(path: Path) -> list[Use]:
    """Private names a tuimail module takes from the libraries, or may collide with.

    Counted: underscored names imported from a library; attributes reached on
    anything but ``self``; and, inside classes that subclass a library class,
    the methods defined and the attributes reached on ``self`` or ``super()``
    (an override, or a name that would silently replace the library's own).
    """
    tree = ast.parse(path.read_text("utf-8"))
    relative = str(path.relative_to(TUIMAIL.parent))
    from_library: set[str] = set()
    uses: list[Use] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIBRARIES:
            for alias in node.names:
                from_library.add(alias.asname or alias.name)
                if _private(alias.name):
                    uses.append(Use(relative, node.lineno, alias.name))
    subclasses: set[ast.ClassDef] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
            known = from_library | {c.name for c in subclasses}
            if bases & known:
                subclasses.add(node)
    inside: set[ast.AST] = set()
    for cls in subclasses:
        for node in ast.walk(cls):
            inside.add(node)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _private(node.name):
                uses.append(Use(relative, node.lineno, node.name))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not _private(node.attr):
            continue
        on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        on_super = (
            isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "super"
        )
        if (on_self or on_super) and node not in inside:
            continue  # tuimail's own class, tuimail's own attribute
        uses.append(Use(relative, node.lineno, node.attr))
    return uses


def _unlisted() -> list[str]:
    library_names = _library_private_names()
    listed = {entry.name for entry in PRIVATE_NAMES}
    problems = []
    for path in sorted(TUIMAIL.rglob("*.py")):
        for use in _uses_in(path):
            if use.name in library_names and use.name not in listed:
                owners = sorted(library_names[use.name])
                problems.append(
                    f"{use.path}:{use.line} uses {use.name!r}, a private name of "
                    f"{' or '.join(owners)}: add PrivateName({owners[0]!r}, {use.name!r}, "
                    f"Kind..., {use.path!r}, <why>) to PRIVATE_NAMES in tuimail/private_api.py "
                    "(or, if tuimail only happens to use the same name, rename ours)"
                )
    return problems


def test_every_private_name_tuimail_uses_is_listed() -> None:
    problems = _unlisted()
    assert problems == [], "\n" + "\n".join(problems)


def _imported_from_libraries() -> set[tuple[str, str]]:
    """Every ``(module, name)`` a tuimail module imports from the libraries."""
    imported = set()
    for path in TUIMAIL.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIBRARIES:
                imported |= {(node.module or "", alias.name) for alias in node.names}
    return imported


def test_every_listed_name_is_still_used() -> None:
    """A stale entry would hide a real one from review; function attributes are by hand."""
    used = {use.name for path in TUIMAIL.rglob("*.py") for use in _uses_in(path)}
    imported = _imported_from_libraries()
    stale = [
        entry.qualified
        for entry in PRIVATE_NAMES
        if (entry.kind is Kind.UNEXPORTED and (entry.owner, entry.name) not in imported)
        or (entry.kind not in (Kind.FUNCTION_ATTRIBUTE, Kind.UNEXPORTED) and entry.name not in used)
    ]
    assert stale == [], f"listed in tuimail/private_api.py but no longer used: {stale}"


def test_the_scan_sees_a_new_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The completeness check names the file, the line and the name to add."""
    package = tmp_path / "tuimail"
    package.mkdir()
    (package / "sneaky.py").write_text(
        "from aiosmtpd.smtp import SMTP\n\n"
        "class Server(SMTP):\n"
        "    def _handle_client(self):\n"
        "        return self._set_rset_state()\n\n"
        "def peek(server):\n"
        "    return server._timeout_handle\n"
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["TUIMAIL"]), "TUIMAIL", package)
    problems = "\n".join(_unlisted())
    for name, line in (("_handle_client", 4), ("_set_rset_state", 5), ("_timeout_handle", 8)):
        assert f"tuimail/sneaky.py:{line} uses '{name}'" in problems, problems
        assert f"add PrivateName('aiosmtpd.smtp.SMTP', '{name}'" in problems


def test_doctor_tells_when_an_installed_library_lacks_a_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tuimail.doctor import _smtp_libraries_check

    check = _smtp_libraries_check()
    assert check.ok and "aiosmtplib 5.1." in check.detail, check
    gone = replace(PRIVATE_NAMES[0], name="_renamed_in_a_later_release")
    monkeypatch.setattr(private_api, "PRIVATE_NAMES", (*PRIVATE_NAMES, gone))
    check = _smtp_libraries_check()
    assert not check.ok and gone.qualified in check.detail and check.fix
