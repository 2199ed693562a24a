"""The OAuth client against providers that misbehave: a scripted HTTP server on loopback.

Escaped and bounded error text, the size cap on answers, timeouts, no
redirects followed, secrets only over https, the device grant's slow_down,
expiry and refusal, and a loopback listener that ignores strays, times out
and logs nothing.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tuimail.credentials import Secret
from tuimail.oauth.errors import (
    BadAnswer,
    EndpointRefused,
    ProviderRefused,
    ProviderUnreachable,
    SignInCancelled,
    SignInDenied,
    SignInTimedOut,
)
from tuimail.oauth.flows import (
    BrowserSignIn,
    DeviceCode,
    finish_device_sign_in,
    start_device_sign_in,
)
from tuimail.oauth.loopback import LoopbackListener
from tuimail.oauth.providers import GOOGLE, ClientApp, Provider, custom_provider
from tuimail.oauth.tokens import TokenKeeper, request_tokens
from tuimail.oauth.transport import ANSWER_LIMIT

CLIENT = ClientApp("tuimail-attack", Secret("client-secret-value"))


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to stall before answering (for the timeout test).
    stall: float = 0.0


def json_answer(status: int = 200, **values: object) -> Answer:
    return Answer(status, json.dumps(values).encode())


class Scripted:
    """A loopback HTTP server answering each POST with the next scripted answer."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.forms: list[str] = []
        self.release = threading.Event()
        script = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                script.forms.append(self.rfile.read(length).decode())
                answer = script.answers.pop(0) if script.answers else json_answer(500)
                if answer.stall:
                    script.release.wait(answer.stall)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def provider(self) -> Provider:
        return custom_provider(
            authorize_url=self.url + "/auth",
            token_url=self.url + "/token",
            device_url=self.url + "/device",
            scope="smtp",
        )

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.close()


def refresh_fields() -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": "the-refresh-token"}


def test_provider_error_text_is_escaped_and_bounded(scripted: Scripted) -> None:
    scripted.answers.append(
        json_answer(
            400,
            error="invalid_request\x1b[2J",
            error_description="\x1b]0;owned\x07" + "x" * 5000 + "\u202e",
        )
    )
    with pytest.raises(ProviderRefused) as refused:
        request_tokens(scripted.provider(), CLIENT, refresh_fields())
    words = str(refused.value)
    assert "\x1b" not in words and "\x07" not in words and "\u202e" not in words
    assert "\\x1b[2J" in words
    assert len(words) < 500
    assert refused.value.error == "invalid_request\x1b[2J"  # the data stays as sent


def test_a_non_json_error_page_is_quoted_escaped(scripted: Scripted) -> None:
    scripted.answers.append(Answer(502, b"<html>\x1b[31mBad gateway" + b"y" * 3000))
    with pytest.raises(BadAnswer) as bad:
        request_tokens(scripted.provider(), CLIENT, refresh_fields())
    assert "HTTP status 502" in str(bad.value)
    assert "\x1b" not in str(bad.value) and len(str(bad.value)) < 400


def test_an_answer_over_the_size_cap_is_refused(scripted: Scripted) -> None:
    scripted.answers.append(Answer(200, b'{"access_token": "' + b"a" * ANSWER_LIMIT + b'"}'))
    with pytest.raises(BadAnswer, match="larger than 64 KiB"):
        request_tokens(scripted.provider(), CLIENT, refresh_fields())


def test_a_provider_that_does_not_answer_times_out(scripted: Scripted) -> None:
    scripted.answers.append(Answer(stall=30))
    with pytest.raises(ProviderUnreachable, match="could not reach"):
        request_tokens(scripted.provider(), CLIENT, refresh_fields(), timeout=0.5)


def test_a_redirecting_token_endpoint_is_not_followed(scripted: Scripted) -> None:
    scripted.answers.append(Answer(302, b"", {"Location": scripted.url + "/elsewhere"}))
    with pytest.raises(BadAnswer, match="HTTP status 302"):
        request_tokens(scripted.provider(), CLIENT, refresh_fields())
    assert len(scripted.forms) == 1  # the form (with its secrets) went nowhere else


def test_the_client_secret_and_refresh_token_go_in_the_body_only(scripted: Scripted) -> None:
    scripted.answers.append(json_answer(access_token="at", expires_in=60, token_type="Bearer"))
    tokens = request_tokens(scripted.provider(), CLIENT, refresh_fields())
    (form,) = scripted.forms
    assert "client_secret=client-secret-value" in form and "refresh_token=the-refresh-token" in form
    assert "client-secret-value" not in repr(CLIENT)
    assert "Secret('********')" in repr(tokens) and "'at'" not in repr(tokens)


@pytest.mark.parametrize(
    "url",
    ["http://mail.example.test/token", "ftp://127.0.0.1/token", "https:///token", "token"],
)
def test_secrets_go_only_to_https_or_loopback(url: str) -> None:
    with pytest.raises(EndpointRefused, match="must be an https:// address"):
        custom_provider(authorize_url="https://a.example.test/", token_url=url, scope="smtp")


def test_a_bad_token_answer_is_refused(scripted: Scripted) -> None:
    scripted.answers.append(json_answer(access_token="a\x1bb", token_type="Bearer"))
    with pytest.raises(BadAnswer, match="characters a token cannot have"):
        request_tokens(scripted.provider(), CLIENT, refresh_fields())
    scripted.answers.append(json_answer(access_token="abc", token_type="mac"))
    with pytest.raises(BadAnswer, match="not a Bearer token"):
        request_tokens(scripted.provider(), CLIENT, refresh_fields())


def test_other_refresh_refusals_are_not_sign_in_again(scripted: Scripted) -> None:
    """A wrong client id is a setting to fix, not a sign-in to redo."""
    scripted.answers.append(json_answer(401, error="invalid_client"))
    keeper = TokenKeeper("work", scripted.provider(), CLIENT, Secret("rt"))
    with pytest.raises(ProviderRefused) as refused:
        keeper.access_token()
    assert refused.value.error == "invalid_client"
    assert "sign in again" not in str(refused.value)


# -- the device grant ----------------------------------------------------------------


def device_code(interval: float = 2, expires_in: float = 60) -> DeviceCode:
    return DeviceCode(
        verification_uri="https://example.test/device",
        user_code="ABCD-EFGH",
        verification_uri_complete=None,
        expires_in=expires_in,
        interval=interval,
        device_code=Secret("the-device-code"),
    )


class Waits:
    """The device poll's waits, recorded and moved on a fake clock instead of slept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.asked: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.asked.append(seconds)
        self.now += seconds
        return False


def test_device_polling_waits_the_interval_and_slows_down(scripted: Scripted) -> None:
    scripted.answers += [
        json_answer(400, error="authorization_pending"),
        json_answer(400, error="slow_down"),
        json_answer(400, error="authorization_pending"),
        json_answer(access_token="at", expires_in=60),
    ]
    waits = Waits()
    tokens = finish_device_sign_in(
        scripted.provider(), CLIENT, device_code(), clock=waits.clock, wait=waits.wait
    )
    assert tokens.access_token.reveal() == "at"
    assert waits.asked == [2, 2, 7, 7]
    assert all("device_code=the-device-code" in form for form in scripted.forms)


def test_device_polling_stops_when_the_code_expires(scripted: Scripted) -> None:
    scripted.answers += [json_answer(400, error="authorization_pending")] * 3
    waits = Waits()
    with pytest.raises(SignInTimedOut, match="with the device code"):
        finish_device_sign_in(
            scripted.provider(),
            CLIENT,
            device_code(interval=5, expires_in=12),
            clock=waits.clock,
            wait=waits.wait,
        )
    assert len(scripted.forms) == 2  # at 5 and 10 seconds; at 15 the code is gone


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        ("access_denied", SignInDenied),
        ("authorization_declined", SignInDenied),
        ("expired_token", SignInTimedOut),
        ("invalid_client", ProviderRefused),
    ],
)
def test_device_polling_ends_on_a_final_answer(
    scripted: Scripted, error: str, raised: type[Exception]
) -> None:
    scripted.answers.append(json_answer(400, error=error))
    waits = Waits()
    with pytest.raises(raised):
        finish_device_sign_in(
            scripted.provider(), CLIENT, device_code(), clock=waits.clock, wait=waits.wait
        )


def test_device_polling_can_be_cancelled(scripted: Scripted) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(SignInCancelled):
        finish_device_sign_in(scripted.provider(), CLIENT, device_code(), cancel=cancel)
    assert scripted.forms == []


def test_a_device_answer_with_things_not_to_show_is_refused(scripted: Scripted) -> None:
    scripted.answers.append(
        json_answer(
            device_code="dc",
            user_code="AB\x1b[2JCD",
            verification_uri="https://example.test/device",
            expires_in=600,
        )
    )
    with pytest.raises(BadAnswer, match="user_code is not something tuimail can show"):
        start_device_sign_in(scripted.provider(), CLIENT)
    scripted.answers.append(
        json_answer(
            device_code="dc",
            user_code="ABCD",
            verification_uri="javascript:alert(1)",
            expires_in=600,
        )
    )
    with pytest.raises(EndpointRefused):
        start_device_sign_in(scripted.provider(), CLIENT)


def test_a_device_answer_in_googles_words_is_read(scripted: Scripted) -> None:
    scripted.answers.append(
        json_answer(
            device_code="dc",
            user_code="ABCD",
            verification_url="https://www.google.test/device",
            expires_in=1800,
            interval=5,
        )
    )
    code = start_device_sign_in(scripted.provider(), CLIENT)
    assert (code.verification_uri, code.user_code, code.interval) == (
        "https://www.google.test/device",
        "ABCD",
        5,
    )
    assert "'dc'" not in repr(code)


def test_google_has_no_device_sign_in_for_mail() -> None:
    with pytest.raises(Exception, match="does not offer a device sign-in for mail"):
        start_device_sign_in(GOOGLE, CLIENT)


# -- the loopback listener ------------------------------------------------------------


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)


def test_the_listener_ignores_strays_and_keeps_nothing_in_logs(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with LoopbackListener("the-state") as listener:
        result: list[str] = []
        waiter = threading.Thread(target=lambda: result.append(listener.wait_for_code(30).reveal()))
        waiter.start()
        assert fetch(f"http://127.0.0.1:{listener.port}/favicon.ico") == 404
        assert fetch(f"{listener.redirect_uri}?state=the-state") == 400  # no code: stray
        assert fetch(f"{listener.redirect_uri}?code=the-secret-code&state=the-state") == 200
        waiter.join(30)
    assert result == ["the-secret-code"]
    out, err = capfd.readouterr()
    assert "the-secret-code" not in out + err


def test_the_listener_gives_up_after_its_timeout() -> None:
    with (
        LoopbackListener("s") as listener,
        pytest.raises(SignInTimedOut, match="in the browser"),
    ):
        listener.wait_for_code(0.3)


def test_the_provider_saying_no_comes_back_as_not_allowed() -> None:
    provider = custom_provider(
        authorize_url="https://auth.example.test/authorize?tenant=x",
        token_url="https://auth.example.test/token",
        scope="smtp",
    )
    with BrowserSignIn(provider, CLIENT) as sign_in:
        assert sign_in.url.startswith("https://auth.example.test/authorize?tenant=x&")
        state = sign_in.url.split("state=")[1].split("&")[0]
        result: list[BaseException] = []

        def finish() -> None:
            try:
                sign_in.finish(30)
            except SignInDenied as error:
                result.append(error)

        waiter = threading.Thread(target=finish)
        waiter.start()
        status = fetch(
            f"{sign_in.redirect_uri}?error=access_denied&error_description=no%1b&state={state}"
        )
        waiter.join(30)
    assert status == 200
    (denied,) = result
    assert "\x1b" not in str(denied) and "not allowed" in str(denied)


def test_no_token_shows_in_a_traceback_with_local_variables(scripted: Scripted) -> None:
    """Textual and rich print tracebacks with each frame's variables: none holds a token bare."""
    import io
    import traceback

    from rich.console import Console
    from rich.traceback import Traceback

    scripted.answers.append(
        json_answer(access_token="SEEKRIT-ACCESS", token_type="mac", refresh_token="SEEKRIT-NEW")
    )
    keeper = TokenKeeper("work", scripted.provider(), CLIENT, Secret("SEEKRIT-OLD"))
    with pytest.raises(BadAnswer) as bad:
        keeper.access_token()
    below_the_test = bad.tb.tb_next  # this test's own source names the tokens
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(Traceback.from_exception(bad.type, bad.value, below_the_test, show_locals=True))
    shown = console.export_text() + "".join(
        traceback.format_exception(bad.type, bad.value, below_the_test)
    )
    assert "refresh_token" in shown  # the locals are there...
    assert "SEEKRIT" not in shown and "client-secret-value" not in shown  # ...masked


def test_a_refresh_names_the_scope_only_where_the_provider_documents_it(
    scripted: Scripted,
) -> None:
    from dataclasses import replace

    for scope_on_refresh in (True, False):
        provider = replace(scripted.provider(), scope_on_refresh=scope_on_refresh)
        scripted.answers.append(json_answer(access_token="at"))
        TokenKeeper("work", provider, CLIENT, Secret("rt")).refresh()
    with_scope, without = scripted.forms
    assert "scope=smtp" in with_scope and "scope" not in without
