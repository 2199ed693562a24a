"""The sandbox's side of OAuth 2.0: XOAUTH2 and OAUTHBEARER, tokens checked by introspection.

``tuimail serve --auth any`` offers both mechanisms and reads each initial
response strictly; with ``--oauth-introspect`` each token is checked at a
real authorization server (oidc-provider, tests/oauth_support.py) that
issued it to a user who signed in through tuimail's own browser sign-in
(tests/oauth_smtp.py's ``sign_in``). The client side is the real
``tuimail send`` with ``--token-command``, or a raw client where the exact
bytes of an exchange are the point.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_helpers import TUIMAIL, files_under, leak_patterns, run_tuimail, send_args
from tests.oauth_smtp import sign_in
from tests.oauth_support import OAuthProviderServer
from tests.sandbox_support import (
    Client,
    RunningSandbox,
    greeted_client,
    transcript_text,
)

#: Seconds any wait here may take before it counts as a hang.
WAIT = 30.0


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user: str, token: str, port: int = 587) -> bytes:
    return f"n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


RESPONSES = {"XOAUTH2": xoauth2, "OAUTHBEARER": oauthbearer}


@dataclass
class Served:
    """A ``tuimail serve`` process: its port, and what it printed once it stopped."""

    port: int
    stdout: str = ""
    stderr: str = ""


@contextmanager
def serving(workdir: Path, *args: str) -> Iterator[Served]:
    """``tuimail serve`` on a free port until the block ends (Ctrl-C), all its output kept.

    Its stdout (the transcripts) goes to a file in ``workdir``, so a long one
    never fills a pipe; stderr is read whole, from the listening line on.
    """
    out = workdir / "serve.out"
    with out.open("w") as stdout:
        process = subprocess.Popen(
            [TUIMAIL, "serve", "--port", "0", *args],
            stdout=stdout, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    assert process.stderr is not None
    first = process.stderr.readline()
    try:
        assert "listening on 127.0.0.1:" in first, first + process.stderr.read()
        served = Served(int(first.split("127.0.0.1:")[1].split()[0]))
        yield served
    finally:
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        process.wait(WAIT)
        process.stderr.close()
    served.stderr = first + rest
    served.stdout = out.read_text()


def introspecting(provider: OAuthProviderServer, client_file: Path) -> tuple[str, ...]:
    return (
        "--auth",
        "any",
        "--oauth-introspect",
        provider.introspection_url,
        "--oauth-introspect-client-file",
        str(provider.write_introspection_client_file(client_file)),
    )


def session_files(isolated_dirs: Path) -> list[dict[str, object]]:
    found = sorted((isolated_dirs / "data" / "tuimail" / "sandbox" / "sessions").glob("*.json"))
    return [json.loads(path.read_text()) for path in found]


def ehlo_and_auth(client: Client, mechanism: str, response: bytes) -> bytes:
    client.exchange((b"EHLO client.test\r\n", b"250"))
    client.send(b"AUTH " + mechanism.encode() + b" " + b64(response) + b"\r\n")
    return client.reply()


def free_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("mechanism", ["oauthbearer", "xoauth2"])
def test_serve_accepts_a_token_the_provider_issued_and_keeps_no_secret(
    oauth_provider: OAuthProviderServer, tmp_path: Path, isolated_dirs: Path, mechanism: str
) -> None:
    """The whole path: a real sign-in, ``tuimail send`` with the token, serve checking it."""
    tokens = sign_in(oauth_provider)
    token = tokens.access_token.reveal()
    outside = tmp_path / "outside"
    outside.mkdir()
    token_file = outside / "token"
    token_file.write_text(token + "\n")
    user = oauth_provider.login
    options = introspecting(oauth_provider, outside / "introspector")
    with serving(tmp_path, *options) as served:
        sent = run_tuimail(
            *send_args(served.port, "--body", "hello"), "--allow-plaintext-auth", "--user", user,
            "--auth", mechanism, "--token-command", f"cat {token_file}",
        )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert (
        f"AUTH XOAUTH2 and OAUTHBEARER: each token is checked at {oauth_provider.introspection_url}"
        in served.stderr
    )
    [session] = session_files(isolated_dirs)
    assert (session["authenticated_as"], session["auth_mechanism"]) == (user, mechanism.upper())
    assert session["message_count"] == 1
    texts = [str(entry["text"]) for entry in session["transcript"]]  # type: ignore[attr-defined]
    assert f"AUTH {mechanism.upper()} ********" in texts
    assert (
        f"{mechanism.upper()} token for {user} checked at {oauth_provider.introspection_url}: "
        f"active, issued to {user}"
    ) in texts
    # Neither the token nor the sandbox's client secret, in any form, anywhere it wrote.
    _client_id, secret = oauth_provider.introspection_client()
    written = {
        name: blob for name, blob in files_under(isolated_dirs).items() if "outside" not in name
    }
    written["serve output"] = (served.stdout + served.stderr).encode()
    written["send output"] = (sent.stdout + sent.stderr).encode()
    assert any("sessions" in name for name in written)
    for value in (token, secret):
        for name, blob in written.items():
            assert not any(p in blob for p in leak_patterns(value)), name


@pytest.mark.parametrize(
    ("mechanism", "status", "answer"),
    [("OAUTHBEARER", "invalid_token", b"AQ=="), ("XOAUTH2", "401", b"")],
)
def test_a_revoked_token_gets_the_json_challenge_then_535(
    oauth_provider: OAuthProviderServer,
    tmp_path: Path,
    isolated_dirs: Path,
    mechanism: str,
    status: str,
    answer: bytes,
) -> None:
    tokens = sign_in(oauth_provider)
    oauth_provider.revoke(tokens.access_token)
    token = tokens.access_token.reveal()
    user = oauth_provider.login
    options = introspecting(oauth_provider, tmp_path / "introspector")
    with serving(tmp_path, *options) as served, greeted_client(served.port) as client:
        challenge = ehlo_and_auth(client, mechanism, RESPONSES[mechanism](user, token))
        expected = json.dumps({"status": status, "schemes": "bearer"}, separators=(",", ":"))
        assert challenge == b"334 " + b64(expected.encode()) + b"\r\n"
        client.send(answer + b"\r\n")
        assert client.reply() == b"535 5.7.8 Authentication credentials invalid\r\n"
        client.exchange((b"QUIT\r\n", b"221"))
    [session] = session_files(isolated_dirs)
    assert (session["authenticated_as"], session["auth_mechanism"]) == ("", "")
    texts = [str(entry["text"]) for entry in session["transcript"]]  # type: ignore[attr-defined]
    assert (
        f"{mechanism} token for {user} refused: {oauth_provider.introspection_url} says it is "
        "not active (expired, revoked or never issued)"
    ) in texts
    # The answer to the challenge is masked like any SASL response.
    assert texts[texts.index(challenge.decode().strip()) + 1] == "********"
    for name, blob in {**files_under(isolated_dirs), "out": served.stderr.encode()}.items():
        assert not any(p in blob for p in leak_patterns(token)), name


def test_a_token_of_another_user_is_refused(
    oauth_provider: OAuthProviderServer, tmp_path: Path, isolated_dirs: Path
) -> None:
    """Active, but not the user the client names: ``400`` in the challenge, then 535."""
    token = sign_in(oauth_provider).access_token.reveal()
    options = introspecting(oauth_provider, tmp_path / "introspector")
    with serving(tmp_path, *options) as served, greeted_client(served.port) as client:
        challenge = ehlo_and_auth(client, "XOAUTH2", xoauth2("mallory@example.test", token))
        assert challenge.startswith(b"334 ")
        said = json.loads(base64.b64decode(challenge[4:].strip()))
        assert said == {"status": "400", "schemes": "bearer", "scope": said["scope"]}
        assert oauth_provider.scope in said["scope"].split()
        client.send(b"\r\n")
        assert client.reply().startswith(b"535 5.7.8 ")
        # The right user with the same token is accepted on the same connection.
        client.send(b"AUTH XOAUTH2 " + b64(xoauth2(oauth_provider.login, token)) + b"\r\n")
        assert client.reply().startswith(b"235 ")
        client.exchange((b"QUIT\r\n", b"221"))
    [session] = session_files(isolated_dirs)
    assert session["authenticated_as"] == oauth_provider.login
    assert "XOAUTH2 token for mallory@example.test refused: " in transcript_of(session)
    assert f"says it is issued to {oauth_provider.login}" in transcript_of(session)


def transcript_of(session: dict[str, object]) -> str:
    return "\n".join(str(entry["text"]) for entry in session["transcript"])  # type: ignore[attr-defined]


def test_an_unreachable_introspection_endpoint_is_a_temporary_failure(
    tmp_path: Path, isolated_dirs: Path
) -> None:
    client_file = tmp_path / "introspector"
    client_file.write_text("sandbox:not-a-real-secret-1234\n")
    client_file.chmod(0o600)
    url = f"http://127.0.0.1:{free_port()}/token/introspection"
    options = ("--auth", "any", "--oauth-introspect", url, "--oauth-introspect-client-file")
    with (
        serving(tmp_path, *options, str(client_file)) as served,
        greeted_client(served.port) as client,
    ):
        reply = ehlo_and_auth(client, "OAUTHBEARER", oauthbearer("alice", "a-token-12345"))
        assert reply == (
            b"454 4.7.0 Temporary authentication failure: the token could not be checked\r\n"
        )
        client.exchange((b"QUIT\r\n", b"221"))
    assert "warning" not in served.stderr  # the file is private: no warning
    [session] = session_files(isolated_dirs)
    assert session["authenticated_as"] == ""
    assert f"the OAUTHBEARER token for alice could not be checked at {url}: " in (
        transcript_of(session)
    )
    for name, blob in files_under(isolated_dirs).items():
        assert b"not-a-real-secret-1234" not in blob, name


def test_an_introspection_endpoint_refusing_the_sandboxs_credentials_is_454(
    oauth_provider: OAuthProviderServer, tmp_path: Path, isolated_dirs: Path
) -> None:
    """A wrong client secret in the file: the token cannot be checked, so it is not accepted."""
    token = sign_in(oauth_provider).access_token.reveal()
    client_id, _secret = oauth_provider.introspection_client()
    client_file = tmp_path / "introspector"
    client_file.write_text(f"{client_id}:wrong-secret-5678\n")
    client_file.chmod(0o600)
    options = ("--auth", "any", "--oauth-introspect", oauth_provider.introspection_url)
    with (
        serving(tmp_path, *options, "--oauth-introspect-client-file", str(client_file)) as served,
        greeted_client(served.port) as client,
    ):
        reply = ehlo_and_auth(client, "XOAUTH2", xoauth2(oauth_provider.login, token))
        assert reply.startswith(b"454 4.7.0 Temporary authentication failure")
        client.exchange((b"QUIT\r\n", b"221"))
    [session] = session_files(isolated_dirs)
    said = transcript_of(session)
    assert "could not be checked at" in said and "invalid_client" in said, said
    for name, blob in {**files_under(isolated_dirs), "out": served.stdout.encode()}.items():
        assert b"wrong-secret-5678" not in blob, name
        assert not any(p in blob for p in leak_patterns(token)), name


def test_without_introspection_any_well_formed_token_is_accepted_and_said_so(
    tmp_path: Path, isolated_dirs: Path
) -> None:
    """As ``--auth any`` takes any password: here a token of 3,000 characters, as Microsoft's are."""
    token = "eyJ" + "A" * 2997
    with serving(tmp_path, "--auth", "any", "--quiet") as served:
        sent = run_tuimail(
            *send_args(served.port, "--body", "hello"), "--allow-plaintext-auth", "--user", "bob",
            "--auth", "xoauth2", "--token-command", f"printf '{token}'",
        )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "AUTH XOAUTH2 and OAUTHBEARER: any well-formed token is accepted" in served.stderr
    [session] = session_files(isolated_dirs)
    assert (session["authenticated_as"], session["auth_mechanism"]) == ("bob", "XOAUTH2")
    assert " auth XOAUTH2 as bob: completed, 1 message(s)" in served.stdout
    assert "XOAUTH2 token for bob accepted without a check" in transcript_of(session)
    for name, blob in {**files_under(isolated_dirs), "out": served.stderr.encode()}.items():
        assert not any(p in blob for p in leak_patterns(token)), name


MALFORMED = [
    ("XOAUTH2", b"user=bob\x01auth=Bearer tok\x01", "Malformed XOAUTH2 response: expected user="),
    ("XOAUTH2", b"usr=bob\x01auth=Bearer tok\x01\x01", "the first field must be user=NAME"),
    ("XOAUTH2", b"user=bob\x01auth=Basic tok\x01\x01", "auth= must be 'Bearer ' and the token"),
    ("XOAUTH2", b"user=\x01auth=Bearer tok\x01\x01", "the user name is empty"),
    ("XOAUTH2", b"user=bob\x01auth=Bearer to ken\x01\x01", "holds characters a bearer token"),
    ("OAUTHBEARER", b"n,a=bob,\x01auth=Bearer tok\x01", "ends with ^A^A"),
    ("OAUTHBEARER", b"p=tls-unique,a=bob,\x01auth=Bearer t\x01\x01", "no channel binding"),
    ("OAUTHBEARER", b"n,a=b,ob,\x01auth=Bearer t\x01\x01", "written =2C"),
    ("OAUTHBEARER", b"n,a=bob,\x01host=h\x01\x01", "there is no auth=Bearer TOKEN field"),
    ("OAUTHBEARER", b"n,a=bob,\x01auth=Bearer t\x01auth=Bearer u\x01\x01", "given twice"),
    ("OAUTHBEARER", b"n,a=bob,\x01auth=Bearer t\x01\x01\x01x\x01\x01", "an empty field"),
    ("OAUTHBEARER", b"n,a=bob,\x01port=x\x01auth=Bearer t\x01\x01", "port= must be a number"),
    ("OAUTHBEARER", b"\x01", "ends with ^A^A"),
]


@pytest.mark.parametrize(("mechanism", "response", "words"), MALFORMED)
def test_a_malformed_response_is_refused_501_in_words(
    make_sandbox: Callable[..., RunningSandbox], mechanism: str, response: bytes, words: str
) -> None:
    running = make_sandbox(auth_users={})
    with greeted_client(running.port) as client:
        reply = ehlo_and_auth(client, mechanism, response).decode()
        assert reply.startswith(f"501 5.5.2 Malformed {mechanism} response: "), reply
        assert words in reply
        client.exchange((b"QUIT\r\n", b"221"))
    [session] = running.wait_for_sessions(1)
    assert session.authenticated_as == ""


def test_a_response_sent_after_an_empty_challenge_and_one_not_base64(
    make_sandbox: Callable[..., RunningSandbox],
) -> None:
    running = make_sandbox(auth_users={})
    token = "token-after-the-challenge"
    with greeted_client(running.port) as client:
        client.exchange((b"EHLO client.test\r\n", b"250"))
        client.send(b"AUTH XOAUTH2 not*base64\r\n")
        assert client.reply() == b"501 5.5.2 The XOAUTH2 response is not base64\r\n"
        client.send(b"AUTH OAUTHBEARER\r\n")
        assert client.reply() == b"334 \r\n"
        client.send(b64(f"n,,\x01auth=Bearer {token}\x01\x01".encode()) + b"\r\n")
        assert client.reply().startswith(b"235 ")
        client.exchange((b"QUIT\r\n", b"221"))
    [session] = running.wait_for_sessions(1)
    assert session.auth_mechanism == "OAUTHBEARER"
    assert " helo client.test auth OAUTHBEARER: completed, " in session.summary()
    assert token not in transcript_text(session)
    assert "OAUTHBEARER token for (no user named) accepted without a check" in (
        transcript_text(session)
    )


def test_an_auth_file_alone_offers_no_token_mechanism(
    make_sandbox: Callable[..., RunningSandbox],
) -> None:
    """Its users have passwords only: a token could not be checked, so none is taken."""
    running = make_sandbox(auth_users={"alice": "pw"})
    with greeted_client(running.port) as client:
        client.send(b"EHLO client.test\r\n")
        lines = []
        while (line := client.replies.readline())[3:4] == b"-":
            lines.append(line)
        assert b"250-AUTH LOGIN PLAIN\r\n" in lines
        client.send(b"AUTH XOAUTH2 " + b64(xoauth2("alice", "tok")) + b"\r\n")
        assert client.reply().startswith(b"504 ")
    any_auth = make_sandbox(auth_users={})
    with greeted_client(any_auth.port) as client:
        client.send(b"EHLO client.test\r\n")
        while (line := client.replies.readline())[3:4] == b"-":
            if line.startswith(b"250-AUTH"):
                assert line == b"250-AUTH LOGIN OAUTHBEARER PLAIN XOAUTH2\r\n"


def test_serve_refuses_a_bad_introspection_setting_in_words(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_text("sandbox:secret-value-789\n")
    good.chmod(0o600)
    url = "http://127.0.0.1:9/introspect"
    cases: list[tuple[list[str], int, str]] = [
        (["--auth", "any", "--oauth-introspect", url], 2, "needs --oauth-introspect-client-file"),
        (
            ["--auth", "any", "--oauth-introspect-client-file", str(good)],
            2,
            "used only with --oauth-introspect URL",
        ),
        (
            ["--oauth-introspect", url, "--oauth-introspect-client-file", str(good)],
            2,
            "--oauth-introspect needs --auth any or --auth-file",
        ),
        (
            ["--auth", "any", "--oauth-introspect", url, "--oauth-introspect-client-file",
             str(tmp_path / "missing")],
            1,
            f"cannot read the introspection client file {tmp_path / 'missing'}",
        ),
        (
            ["--auth", "any", "--oauth-introspect", "http://auth.example.test/introspect",
             "--oauth-introspect-client-file", str(good)],
            1,
            "--oauth-introspect http://auth.example.test/introspect: must be an https:// address",
        ),
    ]  # fmt: skip
    for lines, name in (("no-colon\n", "bad1"), ("a:b\nc:d\n", "bad2"), (":secret\n", "bad3")):
        bad = tmp_path / name
        bad.write_text(lines)
        cases.append(
            (
                ["--auth", "any", "--oauth-introspect", url,
                 "--oauth-introspect-client-file", str(bad)],
                1,
                f"the introspection client file {bad} must hold one line, client_id:secret",
            )
        )  # fmt: skip
    for args, code, words in cases:
        result = run_tuimail("serve", "--port", "0", *args, timeout=WAIT)
        assert (result.returncode, words) == (code, words) and words in result.stderr, (
            args,
            result.stderr,
        )
        assert "secret-value-789" not in result.stderr + result.stdout


def test_serve_warns_when_others_can_read_the_client_file(tmp_path: Path) -> None:
    client_file = tmp_path / "introspector"
    client_file.write_text("sandbox:secret-value-789\n")
    os.chmod(client_file, 0o644)
    options = ("--auth", "any", "--oauth-introspect", "http://127.0.0.1:9/i")
    with serving(tmp_path, *options, "--oauth-introspect-client-file", str(client_file)) as served:
        pass
    assert (
        f"warning: {client_file} can be read by other users of this machine (mode 644); "
        f"it holds a client secret: chmod 600 {client_file}"
    ) in served.stderr
    assert "secret-value-789" not in served.stderr
