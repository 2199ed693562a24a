"""Profiles and profiles.toml: round trips, permissions, errors that point at the line."""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tuimail.errors import NotFound
from tuimail.profiles import (
    AuthMechanism,
    Profile,
    ProfileError,
    ProfileStore,
    ProfileStoreError,
    Security,
    with_changes,
)


def every_field_profile(name: str = "work") -> Profile:
    """A profile where every setting differs from its default."""
    return Profile(
        name=name,
        host="smtp.example.com",
        port=2525,
        security=Security.TLS,
        username="alice@example.com",
        from_address="alice@example.com",
        display_name="Alice Ä. Example",
        auth_mechanism=AuthMechanism.CRAM_MD5,
        verify_tls=False,
        ca_file="/etc/ssl/private-ca.pem",
        allow_plaintext_auth=True,
        timeout=12.5,
        ehlo_name="client.example.com",
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_profiles(text: str) -> ProfileStore:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text(text, encoding="utf-8")
    return store


def all_keys(value: Any) -> set[str]:
    """Every key at any depth of a TOML document."""
    if isinstance(value, dict):
        keys = set(value)
        for item in value.values():
            keys |= all_keys(item)
        return keys
    if isinstance(value, list):
        return set().union(*(all_keys(item) for item in value)) if value else set()
    return set()


# -- round trips ---------------------------------------------------------------


def test_every_field_round_trips() -> None:
    store = ProfileStore()
    original = every_field_profile()
    store.save(original)
    loaded = ProfileStore().get("work")
    assert loaded == original
    for f in dataclasses.fields(Profile):
        assert getattr(loaded, f.name) == getattr(original, f.name), f.name
    assert loaded.security is Security.TLS
    assert loaded.auth_mechanism is AuthMechanism.CRAM_MD5
    assert isinstance(loaded.timeout, float)


def test_defaults_round_trip_and_only_non_defaults_are_written() -> None:
    store = ProfileStore()
    store.save(Profile(name="plain", host="mail.example.com"))
    document = tomllib.loads(store.path.read_text("utf-8"))
    assert document == {"profiles": {"plain": {"host": "mail.example.com"}}}
    loaded = store.get("plain")
    assert loaded == Profile(name="plain", host="mail.example.com")
    assert loaded.effective_port == 587
    assert loaded.security is Security.STARTTLS


def test_several_profiles_round_trip() -> None:
    store = ProfileStore()
    profiles = [
        every_field_profile("work"),
        Profile(name="home.gmail", host="smtp.gmail.com", security=Security.TLS),
        Profile(name="local_test-1", host="::1", port=1025, security=Security.NONE),
    ]
    for profile in profiles:
        store.save(profile)
    loaded = store.load()
    assert list(loaded) == ["work", "home.gmail", "local_test-1"]
    assert list(loaded.values()) == profiles
    assert [p.name for p in store] == ["work", "home.gmail", "local_test-1"]
    assert loaded["local_test-1"].address == "[::1]:1025"


def test_missing_file_is_an_empty_store() -> None:
    store = ProfileStore()
    assert not store.path.exists()
    assert store.load() == {}
    with pytest.raises(NotFound, match="none yet"):
        store.get("work")


def test_get_unknown_names_the_known_profiles() -> None:
    store = ProfileStore()
    store.save(Profile(name="work", host="smtp.example.com"))
    with pytest.raises(NotFound, match=r"'home'.*work"):
        store.get("home")


def test_save_updates_in_place() -> None:
    store = ProfileStore()
    store.save(Profile(name="work", host="smtp.example.com"))
    store.save(Profile(name="work", host="smtp2.example.com", port=465))
    assert store.get("work").host == "smtp2.example.com"
    assert list(store.load()) == ["work"]


def test_add_refuses_an_existing_name() -> None:
    store = ProfileStore()
    store.add(Profile(name="work", host="smtp.example.com"))
    before = store.path.read_bytes()
    with pytest.raises(ProfileError) as info:
        store.add(Profile(name="work", host="other.example.com"))
    assert info.value.field_name == "name"
    assert store.path.read_bytes() == before


def test_remove() -> None:
    store = ProfileStore()
    store.save(Profile(name="work", host="smtp.example.com"))
    store.save(Profile(name="home", host="smtp.home.example"))
    store.remove("work")
    assert list(store.load()) == ["home"]
    before = store.path.read_bytes()
    with pytest.raises(NotFound, match="work"):
        store.remove("work")
    assert store.path.read_bytes() == before


def test_hand_edits_between_changes_survive() -> None:
    store = ProfileStore()
    store.save(Profile(name="work", host="smtp.example.com"))
    with store.path.open("a", encoding="utf-8") as handle:
        handle.write('\n[profiles.byhand]\nhost = "hand.example.com"\nport = 26\n')
    store.save(Profile(name="home", host="smtp.home.example"))
    loaded = store.load()
    assert set(loaded) == {"work", "byhand", "home"}
    assert loaded["byhand"].port == 26


# -- where and how the file is written ----------------------------------------


def test_xdg_config_home_is_honoured(isolated_dirs: Path) -> None:
    store = ProfileStore()
    expected = isolated_dirs / "config" / "tuimail" / "profiles.toml"
    assert store.path == expected
    store.save(Profile(name="work", host="smtp.example.com"))
    assert expected.is_file()


def test_file_is_0600_and_dir_is_0700() -> None:
    store = ProfileStore()
    store.save(Profile(name="work", host="smtp.example.com"))
    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700
    store.save(Profile(name="home", host="smtp.home.example"))
    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700


def test_existing_open_dir_and_file_are_tightened() -> None:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    os.chmod(store.path.parent, 0o755)
    store.path.write_text('[profiles.old]\nhost = "old.example.com"\n', encoding="utf-8")
    os.chmod(store.path, 0o644)
    store.save(Profile(name="work", host="smtp.example.com"))
    assert mode(store.path.parent) == 0o700
    assert mode(store.path) == 0o600
    assert set(store.load()) == {"old", "work"}


def test_explicit_path_in_a_new_directory(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "deep" / "er" / "profiles.toml")
    store.save(Profile(name="work", host="smtp.example.com"))
    assert mode(store.path.parent) == 0o700
    assert ProfileStore(store.path).get("work").host == "smtp.example.com"


def test_no_temp_files_are_left_behind() -> None:
    store = ProfileStore()
    for i in range(5):
        store.save(Profile(name=f"p{i}", host=f"smtp{i}.example.com"))
    store.save(Profile(name="renamed", host="smtp.example.com"), replace_name="p0")
    store.remove("p1")
    store.add(Profile(name="added", host="smtp.example.com"))
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["profiles.toml"]


def test_the_password_is_never_written() -> None:
    # password_command names a command that prints the password, never the password.
    names = {f.name for f in dataclasses.fields(Profile)} - {"password_command"}
    assert not any("password" in name or "secret" in name for name in names)
    with pytest.raises(TypeError):
        Profile(name="work", host="smtp.example.com", password="hunter2")  # type: ignore[call-arg]
    store = ProfileStore()
    store.save(every_field_profile())
    text = store.path.read_text("utf-8")
    keys = all_keys(tomllib.loads(text))
    assert not any("password" in key.lower() for key in keys)
    # allow_plaintext_auth is the only key near the subject, and it holds a bool.
    assert "password" not in text.lower()


# -- errors that point at the file and the line -------------------------------


def test_malformed_toml_names_file_and_line() -> None:
    store = write_profiles('[profiles.work]\nhost = "smtp.example.com"\nport = = 25\n')
    with pytest.raises(ProfileStoreError) as info:
        store.load()
    error = info.value
    assert error.path == store.path
    assert error.line == 3
    assert f"{store.path}:3:" in str(error)


def test_unclosed_table_header_names_line() -> None:
    store = write_profiles('# comment\n\n[profiles.work\nhost = "x"\n')
    with pytest.raises(ProfileStoreError) as info:
        store.load()
    assert info.value.line == 3
    assert str(store.path) in str(info.value)


def test_invalid_utf8_names_line() -> None:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b'[profiles.work]\nhost = "smtp.example.com"\nusername = "\xff"\n')
    with pytest.raises(ProfileStoreError) as info:
        store.load()
    assert info.value.line == 3
    assert f"{store.path}:3:" in str(info.value)
    assert "UTF-8" in str(info.value)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('port = "abc"', "port"),
        ("port = 70000", "port"),
        ("port = true", "port"),
        ('security = "ssl"', "security"),
        ('auth_mechanism = "kerberos"', "auth_mechanism"),
        ('verify_tls = "no"', "verify_tls"),
        ("timeout = 0", "timeout"),
        ('timeout = "slow"', "timeout"),
        ("username = 3", "username"),
        ('ehlo_name = "bad name"', "ehlo_name"),
        ('host = "has space.example.com"', "host"),
    ],
)
def test_invalid_value_names_file_line_and_field(line: str, field: str) -> None:
    text = (
        '[profiles.first]\nhost = "ok.example.com"\n\n'
        '[profiles.work]\nhost = "smtp.example.com"\n'
        "# a comment\n"
        f"{line}\n"
        '\n[profiles.last]\nhost = "ok.example.com"\n'
    )
    if line.startswith("host"):
        text = text.replace('host = "smtp.example.com"\n', "")
        expected_line = 6
    else:
        expected_line = 7
    store = write_profiles(text)
    with pytest.raises(ProfileStoreError) as info:
        store.load()
    message = str(info.value)
    assert info.value.line == expected_line
    assert f"{store.path}:{expected_line}:" in message
    assert field in message
    assert "'work'" in message


def test_missing_host_names_the_table_line() -> None:
    store = write_profiles('[profiles.ok]\nhost = "a.example"\n\n[profiles.work]\nport = 25\n')
    with pytest.raises(ProfileStoreError) as info:
        store.load()
    assert info.value.line == 4
    assert "host" in str(info.value)


def test_invalid_profile_name_in_file_names_the_line() -> None:
    store = write_profiles('[profiles."bad name"]\nhost = "a.example"\n')
    with pytest.raises(ProfileStoreError) as info:
        store.load()
    assert info.value.line == 1
    assert "name" in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["profiles = 3\n", '[profiles]\nwork = "smtp.example.com"\n', "profiles = [1, 2]\n"],
)
def test_wrong_shapes_are_store_errors(text: str) -> None:
    store = write_profiles(text)
    with pytest.raises(ProfileStoreError) as info:
        store.load()
    assert str(store.path) in str(info.value)


def test_unreadable_path_is_a_store_error() -> None:
    store = ProfileStore()
    store.path.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(ProfileStoreError) as info:
        store.load()
    assert str(store.path) in str(info.value)


BROKEN_FILES = [
    pytest.param('[profiles.work]\nhost = "smtp.example.com"\nport = = 25\n', id="syntax"),
    pytest.param('[profiles.work]\nhost = "smtp.example.com"\nport = "abc"\n', id="value"),
    pytest.param('[profiles.work]\nhost = "smtp.example.com"\nsecurity = "ssl"\n', id="enum"),
    pytest.param('[profiles.work]\nport = 25\n[profiles.home]\nhost = "h"\n', id="no-host"),
]


@pytest.mark.parametrize("text", BROKEN_FILES)
def test_a_file_that_fails_to_load_is_never_written(text: str) -> None:
    store = write_profiles(text)
    os.chmod(store.path, 0o640)
    before = store.path.read_bytes()
    with pytest.raises(ProfileStoreError):
        store.save(Profile(name="new", host="smtp.example.com"))
    with pytest.raises(ProfileStoreError):
        store.save(Profile(name="new", host="smtp.example.com"), replace_name="work")
    with pytest.raises(ProfileStoreError):
        store.add(Profile(name="new", host="smtp.example.com"))
    with pytest.raises(ProfileStoreError):
        store.remove("work")
    with pytest.raises(ProfileStoreError):
        store.get("work")
    assert store.path.read_bytes() == before
    assert mode(store.path) == 0o640
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["profiles.toml"]


# -- unknown keys and renames -------------------------------------------------


def test_unknown_keys_survive_a_save_of_another_profile() -> None:
    store = write_profiles(
        "schema = 2\n"
        "[ui]\ntheme = 'dark'\n\n"
        "[profiles.work]\n"
        'host = "smtp.example.com"\n'
        'archive_folder = "Sent"\n'
        "future_flags = [1, 2, 3]\n"
        "[profiles.work.dkim]\n"
        'selector = "s1"\n'
    )
    store.save(Profile(name="home", host="smtp.home.example"))
    document = tomllib.loads(store.path.read_text("utf-8"))
    assert document["schema"] == 2
    assert document["ui"] == {"theme": "dark"}
    work = document["profiles"]["work"]
    assert work["archive_folder"] == "Sent"
    assert work["future_flags"] == [1, 2, 3]
    assert work["dkim"] == {"selector": "s1"}
    assert store.get("work").extra["archive_folder"] == "Sent"


def test_unknown_keys_survive_an_edit_and_a_rename_of_the_same_profile() -> None:
    store = write_profiles('[profiles.work]\nhost = "smtp.example.com"\narchive_folder = "Sent"\n')
    old = store.get("work")
    store.save(with_changes(old, port=2525), replace_name="work")
    assert store.get("work").extra == {"archive_folder": "Sent"}
    store.save(with_changes(store.get("work"), name="office"), replace_name="work")
    loaded = store.load()
    assert list(loaded) == ["office"]
    assert loaded["office"].port == 2525
    assert loaded["office"].extra == {"archive_folder": "Sent"}


def test_rename_via_replace_name() -> None:
    store = ProfileStore()
    store.save(every_field_profile("work"))
    store.save(Profile(name="home", host="smtp.home.example"))
    renamed = with_changes(store.get("work"), name="office")
    store.save(renamed, replace_name="work")
    loaded = store.load()
    assert set(loaded) == {"office", "home"}
    assert loaded["office"] == every_field_profile("office")


def test_rename_onto_an_existing_name_is_refused() -> None:
    store = ProfileStore()
    store.save(Profile(name="work", host="smtp.example.com"))
    store.save(Profile(name="home", host="smtp.home.example"))
    before = store.path.read_bytes()
    with pytest.raises(ProfileError) as info:
        store.save(Profile(name="home", host="smtp.example.com"), replace_name="work")
    assert info.value.field_name == "name"
    assert store.path.read_bytes() == before


def test_dotted_profile_names_round_trip_and_errors_find_their_line() -> None:
    store = ProfileStore()
    store.save(Profile(name="work.gmail", host="smtp.gmail.com"))
    assert store.get("work.gmail").host == "smtp.gmail.com"
    text = store.path.read_text("utf-8") + 'port = "x"\n'
    store.path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileStoreError) as info:
        store.load()
    assert info.value.line == len(text.splitlines())


# -- validation of the model --------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["", "-work", ".work", "a b", "x" * 65, "work\n", "wörk", "a/b", "a:b", "work\x00"],
)
def test_invalid_profile_names(name: str) -> None:
    with pytest.raises(ProfileError) as info:
        Profile(name=name, host="smtp.example.com")
    assert info.value.field_name == "name"
    assert str(info.value).startswith("name:")


@pytest.mark.parametrize("name", ["a", "7", "x" * 64, "work.gmail_2-b", "A.B"])
def test_valid_profile_names(name: str) -> None:
    assert Profile(name=name, host="smtp.example.com").name == name


@pytest.mark.parametrize(
    "host",
    ["", " ", " smtp.example.com", "smtp.example.com ", "smtp example.com", "smtp\nexample.com",
     "smtp\rexample", "smtp\x00x", "smtp\texample", "smtp\x1bx"],
)  # fmt: skip
def test_invalid_hosts(host: str) -> None:
    with pytest.raises(ProfileError) as info:
        Profile(name="work", host=host)
    assert info.value.field_name == "host"
    assert str(info.value).startswith("host:")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"port": -1}, "port"),
        ({"port": 65536}, "port"),
        ({"port": "587"}, "port"),
        ({"port": 25.0}, "port"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 3601}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"security": "ssl"}, "security"),
        ({"auth_mechanism": "gssapi"}, "auth_mechanism"),
        ({"verify_tls": "yes"}, "verify_tls"),
        ({"username": "a\nb"}, "username"),
        ({"from_address": "a@b.com\r\nBcc: x@y.com"}, "from_address"),
        ({"display_name": "A\x00"}, "display_name"),
        ({"ca_file": "/tmp/x\n"}, "ca_file"),
        ({"ehlo_name": "bad name"}, "ehlo_name"),
        ({"ehlo_name": "a\nb"}, "ehlo_name"),
        ({"host": None}, "host"),
    ],
)
def test_invalid_values_name_the_field(changes: dict[str, Any], field: str) -> None:
    settings: dict[str, Any] = {"name": "work", "host": "smtp.example.com", **changes}
    with pytest.raises(ProfileError) as info:
        Profile(**settings)
    assert info.value.field_name == field
    base = Profile(name="work", host="smtp.example.com")
    with pytest.raises(ProfileError) as info:
        with_changes(base, **changes)
    assert info.value.field_name == field


def test_with_changes_coerces_and_validates() -> None:
    base = Profile(name="work", host="smtp.example.com")
    changed = with_changes(base, security="TLS", auth_mechanism="PLAIN", timeout=10)
    assert changed.security is Security.TLS
    assert changed.auth_mechanism is AuthMechanism.PLAIN
    assert changed.timeout == 10.0 and isinstance(changed.timeout, float)
    assert changed.effective_port == 465
    assert base.security is Security.STARTTLS  # the original is untouched
    with pytest.raises(ProfileError) as info:
        with_changes(base, name="bad name")
    assert info.value.field_name == "name"


def test_with_changes_refuses_unknown_settings() -> None:
    base = Profile(name="work", host="smtp.example.com")
    with pytest.raises(ProfileError) as info:
        with_changes(base, pasword="oops")
    assert info.value.field_name == "pasword"


def test_library_callers_may_pass_enum_strings() -> None:
    profile = Profile(name="work", host="smtp.example.com", security="none")  # type: ignore[arg-type]
    assert profile.security is Security.NONE
    assert profile.effective_port == 25
    assert profile.address == "smtp.example.com:25"
