"""tuimail's own errors share one root, and a missing name is NotFound, never a KeyError."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType

import pytest

from tuimail import addresses, credentials, message, mx, outbox, profiles, small_files, targets
from tuimail.accounts import remove_account, save_account
from tuimail.cli import common
from tuimail.errors import NotFound, TuimailError
from tuimail.outbox import (
    AmbiguousMessageId,
    EmptyMessageId,
    MessageNotFound,
    Outbox,
)
from tuimail.profiles import Profile, ProfileStore
from tuimail.small_files import NotReadable
from tuimail.targets import TargetStore

#: Modules whose public exceptions must all derive from TuimailError.
CORE_MODULES = (addresses, common, credentials, message, mx, outbox, profiles, small_files, targets)


@pytest.mark.parametrize("module", CORE_MODULES, ids=lambda m: m.__name__)
def test_every_public_exception_derives_from_the_root(module: ModuleType) -> None:
    module_name = module.__name__
    defined = [
        cls
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException)
        and cls.__module__ == module_name
        and not name.startswith("_")
    ]
    assert defined, f"{module_name} defines no exception"
    assert [c.__name__ for c in defined if not issubclass(c, TuimailError)] == []


def test_not_readable_is_still_an_os_error() -> None:
    """Callers catch OSError for any file that cannot be read; NotReadable stays one."""
    assert issubclass(NotReadable, OSError)


def test_not_found_lists_what_exists_or_says_there_is_none() -> None:
    assert str(NotFound("profile", "home")) == "no profile named 'home'"
    assert str(NotFound("profile", "home", ())) == "no profile named 'home' (profiles: none yet)"
    assert str(NotFound("target", "x", ("a", "b"))) == "no target named 'x' (targets: a, b)"
    assert not isinstance(NotFound("profile", "home"), KeyError)


def test_profile_and_target_lookups_raise_not_found(isolated_dirs: Path) -> None:
    ProfileStore().save(Profile(name="work", host="smtp.example.test"))
    with pytest.raises(NotFound) as info:
        remove_account("home")
    assert (info.value.kind, info.value.name, info.value.known) == ("profile", "home", ("work",))
    with pytest.raises(NotFound, match=r"^no profile named 'gone' \(profiles: work\)$"):
        save_account(Profile(name="new", host="h.example.test"), original_name="gone")
    with pytest.raises(NotFound, match=r"^no target named 'nope'$"):
        TargetStore().remove("nope")


def test_outbox_lookups_tell_their_cases_apart(isolated_dirs: Path) -> None:
    from tuimail.message import Draft, build_message

    outbox = Outbox()
    profile = Profile(name="p", host="127.0.0.1", port=9)
    for subject in ("one", "two"):
        draft = Draft(from_address="a@example.test", to=["b@example.test"], subject=subject)
        outbox.enqueue(profile, build_message(draft))
    with pytest.raises(EmptyMessageId):
        outbox.get(" ")
    with pytest.raises(AmbiguousMessageId) as ambiguous:
        outbox.get("1")  # every key starts with the time
    assert len(ambiguous.value.matches) == 2
    assert str(ambiguous.value).endswith("give more of the id")
    with pytest.raises(MessageNotFound, match=r"^no outbox message 'zzz'$"):
        outbox.drop("zzz")
