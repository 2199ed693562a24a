"""A token endpoint that echoes the request in its error text leaks nothing.

Some providers (or whatever answers in their place) quote the request body in
``error_description``: that body carries the refresh token and the client
secret. ``tuimail send --profile`` with an OAuth profile, refreshing at such
an endpoint, must show neither in its output, its files or its transcript.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
from pathlib import Path

from tests.cli_helpers import files_under, find_leaks, run_tuimail
from tests.conftest import SecretService
from tests.oauth_smtp import OAuthSink, RawSMTP, offered_auth
from tests.smtpservers import ServerThread
from tuimail.credentials import Secret
from tuimail.oauth_account import OAuthSecrets

NAME = "echo"
REFRESH_TOKEN = "rt-ECHOED/refresh+token=value-81723"
CLIENT_SECRET = "cs-ECHOED/client+secret=value-55104"


def echoing_token_endpoint(stop: threading.Event) -> str:
    """A loopback token endpoint refusing each request and quoting its body back."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)

    def answer(connection: socket.socket) -> None:
        connection.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            data += connection.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += connection.recv(65536)
        said = body.replace(b'"', b"").decode()
        authorization = next(
            (line.decode() for line in head.split(b"\r\n") if line.lower().startswith(b"auth")),
            "",
        )
        reply = (
            '{"error":"invalid_client","error_description":"bad request: '
            + said
            + " "
            + authorization
            + '"}'
        ).encode()
        connection.sendall(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(reply) + reply
        )

    def run() -> None:
        with server:
            while not stop.is_set():
                try:
                    connection, _ = server.accept()
                except TimeoutError:
                    continue
                with connection:
                    answer(connection)

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/token"


def test_secrets_a_provider_echoes_reach_no_output_file_or_transcript(
    secret_service: SecretService, servers: ServerThread, isolated_dirs: Path
) -> None:
    stop = threading.Event()
    try:
        token_url = echoing_token_endpoint(stop)
        port = servers.smtp(
            OAuthSink(), server_class=RawSMTP, **offered_auth("XOAUTH2", "OAUTHBEARER")
        )
        added = run_tuimail(
            "accounts", "add", NAME, "--host", "127.0.0.1", "--port", str(port),
            "--security", "none", "--allow-plaintext-auth", "--user", "alice",
            "--from", "alice@example.test",
            "--oauth-provider", "custom", "--oauth-client-id", "echo-app",
            "--oauth-client-secret-stdin",
            "--oauth-authorize-url", "http://127.0.0.1:9/authorize",
            "--oauth-token-url", token_url, "--oauth-scope", "mail",
            input=CLIENT_SECRET + "\n",
        )  # fmt: skip
        assert added.returncode == 0, added.stdout + added.stderr
        OAuthSecrets().store_refresh_token(NAME, Secret(REFRESH_TOKEN))
        outputs: dict[str, bytes] = {}
        for extra in ([], ["--json"], ["--no-queue", "--json"]):
            result = run_tuimail(
                "send", "--profile", NAME, "--to", "bob@example.test", "--subject", "Hi",
                "--body", "Echoed.", *extra,
            )  # fmt: skip
            assert result.returncode != 0
            outputs[f"stdout {extra}"] = result.stdout.encode()
            outputs[f"stderr {extra}"] = result.stderr.encode()
            # The refusal itself still reaches the user, in words.
            assert "the provider refused (invalid_client" in result.stdout + result.stderr
        written = files_under(isolated_dirs)
        assert written, "the sends wrote nothing to search"
        for secret in (REFRESH_TOKEN, CLIENT_SECRET):
            # Raw and base64 (find_leaks), and as the form body carried them.
            for form in (
                secret,
                urllib.parse.quote(secret, safe=""),
                urllib.parse.quote_plus(secret),
            ):
                assert find_leaks(form, {**outputs, **written}) == [], form
    finally:
        stop.set()
