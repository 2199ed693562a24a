"""A real OAuth 2.0 authorization server for the tests, and a user who signs in to it.

``tests/oauth_provider/server.mjs`` runs oidc-provider (npm) on 127.0.0.1;
:func:`start_oauth_provider` starts it (installing its npm packages first if
``node_modules`` is missing, as ``.ci/run`` and ``make test`` do), waits for
its ready line and stops it afterwards. :class:`BrowserUser` plays the person
at the browser: it follows the provider's redirects and fills in its login,
consent and device-code forms over HTTP, with cookies, as a browser would.

Fixtures (tests/conftest.py loads them for every test):

- ``oauth_provider``: a running provider with default settings, for a module.
- ``make_oauth_provider(access_token_ttl=..., device_interval=...)``: one
  with other settings, stopped at the end of the test.

Without Node.js or npm the tests skip (fail under CI=true).
"""

from __future__ import annotations

import contextlib
import functools
import html.parser
import json
import queue
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import require
from tuimail.credentials import Secret
from tuimail.oauth.providers import ClientApp, Provider, custom_provider
from tuimail.oauth.transport import post_form

PROVIDER_DIR = Path(__file__).resolve().parent / "oauth_provider"
SERVER_SCRIPT = PROVIDER_DIR / "server.mjs"
#: Seconds for `npm ci` (downloads on a cold cache) and for the server to be ready.
NPM_TIMEOUT = 300.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
#: Seconds for each HTTP request the test user makes.
HTTP_TIMEOUT = 10.0


class ProviderUnavailable(Exception):
    """Node.js or npm is missing, or the provider would not start; the reason in words."""


#: oidc-provider 9 calls URL.parse, which Node.js has from 20.18 on.
NODE_AT_LEAST = (20, 18)


@functools.cache
def node_tools() -> tuple[str, str]:
    """The paths of node and npm, or :class:`ProviderUnavailable` naming what is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise ProviderUnavailable("Node.js and npm (Debian packages nodejs npm)")
    said = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=START_TIMEOUT
    ).stdout.strip()
    try:
        version = tuple(int(part) for part in said.lstrip("v").split(".")[:2])
    except ValueError:
        version = ()
    if version < NODE_AT_LEAST:
        wanted = ".".join(map(str, NODE_AT_LEAST))
        raise ProviderUnavailable(f"Node.js {wanted} or later for oidc-provider (found {said!r})")
    return node, npm


def install_provider_packages() -> None:
    """`npm ci` in tests/oauth_provider when its node_modules is missing."""
    _node, npm = node_tools()
    if (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    try:
        result = subprocess.run(
            [npm, "ci", "--prefix", str(PROVIDER_DIR), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise ProviderUnavailable(
            f"`npm ci` in {PROVIDER_DIR} took over {NPM_TIMEOUT:.0f} s"
        ) from None
    if result.returncode != 0:
        raise ProviderUnavailable(
            f"`npm ci` in {PROVIDER_DIR} failed ({result.returncode}): {result.stderr[-2000:]}"
        )


@dataclass
class OAuthProviderServer:
    """A running test provider: its endpoints, clients and user, read from its ready line."""

    process: subprocess.Popen[str]
    info: dict[str, Any]
    stderr_path: Path

    @property
    def issuer(self) -> str:
        return str(self.info["issuer"])

    @property
    def scope(self) -> str:
        """The mail scope its tokens are issued for."""
        return str(self.info["scope"])

    @property
    def login(self) -> str:
        """The test user's login: also the ``sub`` that introspection reports."""
        return str(self.info["user"]["login"])

    @property
    def password(self) -> str:
        return str(self.info["user"]["password"])

    def provider(self, *, device: bool = True) -> Provider:
        """This server as a tuimail custom provider."""
        return custom_provider(
            authorize_url=self.info["authorization_endpoint"],
            token_url=self.info["token_endpoint"],
            device_url=self.info["device_authorization_endpoint"] if device else None,
            scope=self.scope,
        )

    def app(self) -> ClientApp:
        """The public installed-app client (loopback redirect, device grant, refresh)."""
        return ClientApp(self.info["clients"]["app"]["client_id"])

    def secret_app(self) -> ClientApp:
        """An installed-app client that has a secret (as Google's have)."""
        client = self.info["clients"]["secretApp"]
        return ClientApp(client["client_id"], Secret(client["client_secret"]))

    def introspection_client(self) -> tuple[str, str]:
        """The SMTP server's client id and secret, for RFC 7662 introspection."""
        client = self.info["clients"]["introspector"]
        return client["client_id"], client["client_secret"]

    @property
    def introspection_url(self) -> str:
        return str(self.info["introspection_endpoint"])

    def write_introspection_client_file(self, path: Path) -> Path:
        """The SMTP server's credentials as a ``client_id:secret`` file (mode 600)."""
        client_id, secret = self.introspection_client()
        path.write_text(f"{client_id}:{secret}\n", encoding="utf-8")
        path.chmod(0o600)
        return path

    def introspect(self, token: Secret) -> dict[str, Any]:
        """What the provider says about ``token`` (``active``, ``sub``, ``scope``, ``exp``...)."""
        return post_form(
            self.introspection_url,
            {"token": token},
            basic_auth=self.introspection_client(),
            timeout=HTTP_TIMEOUT,
        )

    def revoke(self, token: Secret, *, client: ClientApp | None = None) -> None:
        """Revoke ``token`` as its client would (RFC 7009; for a refresh token, its grant too)."""
        app = client or self.app()
        fields = {"client_id": app.client_id, "token": token.reveal()}
        if app.client_secret:
            fields["client_secret"] = app.client_secret.reveal()
        request = urllib.request.Request(
            self.info["revocation_endpoint"],
            data=urllib.parse.urlencode(fields).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            assert response.status == 200, response.status

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _first_line(stream: IO[str], timeout: float) -> str | None:
    """The first line of ``stream``, or None after ``timeout`` seconds or at its end."""
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout) or None
    except queue.Empty:
        return None


@contextlib.contextmanager
def start_oauth_provider(
    workdir: Path,
    *,
    access_token_ttl: int = 3600,
    device_interval: int = 1,
    device_code_ttl: int = 600,
) -> Iterator[OAuthProviderServer]:
    """Run tests/oauth_provider/server.mjs until the block ends.

    ``access_token_ttl`` is the lifetime of access tokens in seconds (short
    ones for the expiry tests), ``device_interval`` the polling interval the
    device grant asks for. Raises :class:`ProviderUnavailable` when Node.js
    is missing or the server does not start within ``START_TIMEOUT``.
    """
    node, _npm = node_tools()
    install_provider_packages()
    stderr_path = workdir / "oauth-provider.stderr"
    command = [
        node,
        str(SERVER_SCRIPT),
        "--port=0",
        f"--access-token-ttl={access_token_ttl}",
        f"--device-interval={device_interval}",
        f"--device-code-ttl={device_code_ttl}",
    ]
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=PROVIDER_DIR, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    assert process.stdout is not None
    line = _first_line(process.stdout, START_TIMEOUT)
    if line is None:
        process.kill()
        process.wait(STOP_TIMEOUT)
        process.stdout.close()
        said = stderr_path.read_text(errors="replace")[-2000:]
        raise ProviderUnavailable(f"the test OAuth provider did not start: {said}")
    server = OAuthProviderServer(process, json.loads(line), stderr_path)
    try:
        yield server
    finally:
        server.stop()


# -- the user at the browser ------------------------------------------------------------


@dataclass
class Form:
    """One HTML form: where it goes and the fields a browser would send."""

    action: str
    method: str
    form_id: str | None
    fields: dict[str, str] = field(default_factory=dict)
    #: (name, value) of each named submit button, in page order.
    buttons: list[tuple[str, str]] = field(default_factory=list)
    #: names of the visible inputs (text, email, password) the user types into.
    typed: list[str] = field(default_factory=list)


class _FormParser(html.parser.HTMLParser):
    """Every form on a page, with inputs and buttons that join it by ``form="id"``."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._open: Form | None = None
        self._orphans: list[tuple[str | None, str, dict[str, str]]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "form":
            self._open = Form(a.get("action", ""), a.get("method", "get").lower(), a.get("id"))
            self.forms.append(self._open)
        elif tag in ("input", "button"):
            owner = a.get("form")
            if owner is not None or self._open is None:
                self._orphans.append((owner, tag, a))
            else:
                _add_control(self._open, tag, a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def close(self) -> None:
        super().close()
        for owner, tag, attrs in self._orphans:
            for form in self.forms:
                if owner is not None and form.form_id == owner:
                    _add_control(form, tag, attrs)


def _add_control(form: Form, tag: str, attrs: dict[str, str]) -> None:
    name = attrs.get("name")
    if not name:
        return
    kind = attrs.get("type", "submit" if tag == "button" else "text").lower()
    if kind == "submit":
        form.buttons.append((name, attrs.get("value", "")))
    elif kind == "hidden":
        form.fields[name] = attrs.get("value", "")
    else:
        form.typed.append(name)
        form.fields[name] = attrs.get("value", "")


@dataclass
class Page:
    url: str
    status: int
    body: str
    title: str
    forms: list[Form]


class _Stop(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class BrowserUser:
    """The test user at a browser: a cookie jar, and the provider's forms filled in."""

    def __init__(self, server: OAuthProviderServer) -> None:
        self.server = server
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(), _Stop())

    def _fetch(self, url: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        """(status, Location or "", body) of one request, redirects not followed."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self._opener.open(url, data=data, timeout=HTTP_TIMEOUT) as response:
                return response.status, "", response.read(1 << 20).decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            with error:
                body = error.read(1 << 20).decode("utf-8", "replace") if error.fp else ""
                return error.code, error.headers.get("Location", ""), body

    def _walk(
        self, url: str, form: dict[str, str] | None = None, *, approve: bool = True
    ) -> tuple[Page | None, str]:
        """Follow redirects and fill in forms until the page has no form to fill.

        Returns (the last page, "") or (None, a redirect that leaves the
        provider: the address the browser would go to next, not visited).
        """
        for _step in range(20):
            status, location, body = self._fetch(url, form)
            form = None
            if location:
                target = urllib.parse.urljoin(url, location)
                if not target.startswith(self.server.issuer + "/"):
                    return None, target
                url = target
                continue
            parser = _FormParser()
            parser.feed(body)
            parser.close()
            page = Page(url, status, body, parser.title.strip(), parser.forms)
            chosen = self._fill(page, approve=approve)
            if chosen is None:
                return page, ""
            url, form = chosen
        raise AssertionError(f"the sign-in did not end within 20 steps (at {url})")

    def _fill(self, page: Page, *, approve: bool) -> tuple[str, dict[str, str]] | None:
        """What the user submits on ``page``, or None when nothing is asked."""
        for form in page.forms:
            if form.method != "post":
                continue
            fields = dict(form.fields)
            action = urllib.parse.urljoin(page.url, form.action or page.url)
            if "password" in fields:  # the login form
                fields["login"] = self.server.login
                fields["password"] = self.server.password
                return action, fields
            if fields.get("prompt") == "consent":
                fields["decision"] = "allow" if approve else "deny"
                return action, fields
            if "user_code" in fields and "user_code" in form.typed:
                return None  # the device page asking for a code: the caller types it
            if "xsrf" in fields:  # the device confirmation: Continue (or Abort)
                if not approve:
                    fields["abort"] = "yes"
                return action, fields
        return None

    def sign_in(self, authorize_url: str, *, approve: bool = True) -> str:
        """Sign in and consent at ``authorize_url``; the redirect back to the app.

        The browser would now open the returned address (the app's loopback
        listener): :meth:`visit` does that, or a test alters it first.
        """
        page, leaving = self._walk(authorize_url, approve=approve)
        if page is not None:
            raise AssertionError(f"the provider stopped at {page.title!r}: {page.body[:500]}")
        return leaving

    def visit(self, url: str) -> tuple[int, str]:
        """Open ``url`` as the browser would (the loopback redirect): its status and page."""
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
                return response.status, response.read(1 << 20).decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read(1 << 20).decode("utf-8", "replace")

    def approve_device(
        self, verification_uri: str, user_code: str, *, approve: bool = True
    ) -> Page:
        """Enter ``user_code`` at ``verification_uri``, sign in and consent (or refuse).

        Returns the last page (the provider's "Sign-in Success" when approved).
        """
        page, leaving = self._walk(verification_uri)
        assert page is not None, f"left the provider for {leaving}"
        entry = next(f for f in page.forms if "user_code" in f.fields)
        fields = {**entry.fields, "user_code": user_code}
        action = urllib.parse.urljoin(page.url, entry.action or page.url)
        page, leaving = self._walk(action, fields, approve=approve)
        assert page is not None, f"left the provider for {leaving}"
        return page


# -- fixtures (tests/conftest.py names this module in pytest_plugins) --


@pytest.fixture(scope="module")
def oauth_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthProviderServer]:
    """The test provider with default settings, shared by a module's tests."""
    try:
        with start_oauth_provider(tmp_path_factory.mktemp("oauth")) as server:
            yield server
    except ProviderUnavailable as missing:
        require(False, str(missing))


@pytest.fixture
def make_oauth_provider(tmp_path: Path) -> Iterator[Callable[..., OAuthProviderServer]]:
    """Start a test provider with other settings (``access_token_ttl=...``) for one test."""
    with contextlib.ExitStack() as stack:

        def make(**settings: int) -> OAuthProviderServer:
            try:
                return stack.enter_context(start_oauth_provider(tmp_path, **settings))
            except ProviderUnavailable as missing:
                require(False, str(missing))
                raise

        yield make
