"""The built-in sandbox listens on a fixed port an application under test can be pointed at.

config.toml's ``[sandbox] port`` chooses it (2525 when absent); a taken port
falls back to a free one and the app says so, in its notice and on F5. The
tests never use 2525 itself: each finds a free port by binding port 0, so
runs side by side do not collide.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from textual.widgets import Static

from tests.cli_helpers import run_tuimail
from tests.ui_support import wait_for_sandbox
from tuimail import paths, user_config
from tuimail.ui.app import TuimailApp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def held_port() -> Iterator[int]:
    """A port another program holds (a listening socket) for as long as the block runs."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def write_config(text: str) -> None:
    path = paths.config_dir() / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def notices(app: TuimailApp) -> list[str]:
    return [str(notification.message) for notification in app._notifications]


def f5_status(app: TuimailApp) -> str:
    return str(app.screen.query_one("#sandbox-status", Static).render())


def test_the_default_port_is_2525_as_tuimail_serve_s() -> None:
    assert user_config.sandbox_port(user_config.load_config()) == (2525, "")


async def test_the_app_s_sandbox_listens_on_the_configured_port(isolated_dirs: Path) -> None:
    port = free_port()
    write_config(f"[sandbox]\nport = {port}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_sandbox(pilot)
        assert app.model.sandbox is not None
        assert app.model.sandbox.port == port
        # The sandbox runs on this loop: connect without blocking it.
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        try:
            assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"220")
        finally:
            writer.close()
        await pilot.press("f5")
        await pilot.pause()
        status = f5_status(app)
        assert f"127.0.0.1:{port}" in status
        assert "Note:" not in status


async def test_a_taken_port_falls_back_to_a_free_one_and_says_so(isolated_dirs: Path) -> None:
    with held_port() as taken:
        write_config(f"[sandbox]\nport = {taken}\n")
        app = TuimailApp()
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_sandbox(pilot)
            assert app.model.sandbox is not None
            actual = app.model.sandbox.port
            assert actual not in (taken, 0)
            said = f"port {taken} is in use (by another program, or another sandbox?); "
            said += f"the sandbox listens on {actual} this time"
            assert any(said in notice for notice in notices(app)), notices(app)
            await pilot.press("f5")
            await pilot.pause()
            status = f5_status(app)
            assert f"127.0.0.1:{actual}" in status
            assert said in status


async def test_a_bad_port_value_is_said_in_words_and_2525_is_tried(
    isolated_dirs: Path,
) -> None:
    write_config('[sandbox]\nport = "twenty-five"\n')
    port, problem = user_config.sandbox_port(user_config.load_config())
    assert port == 2525
    assert problem == (
        "config.toml [sandbox] port = 'twenty-five' is not a port number "
        "(a whole number from 1 to 65535, or 0 for any free port); the sandbox uses port 2525"
    )
    for bad in ("70000", "-1", "true", "25.5"):
        write_config(f"[sandbox]\nport = {bad}\n")
        port, problem = user_config.sandbox_port(user_config.load_config())
        assert port == 2525 and "is not a port number" in problem, bad
    write_config("[sandbox]\nport = 0\n")
    assert user_config.sandbox_port(user_config.load_config()) == (0, "")

    # The app says it once when it starts, and still starts a sandbox.
    write_config('[sandbox]\nport = "twenty-five"\n')
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_sandbox(pilot)
        assert sum("'twenty-five' is not a port number" in n for n in notices(app)) == 1


def test_send_to_the_built_in_sandbox_uses_the_configured_port(isolated_dirs: Path) -> None:
    port = free_port()
    write_config(f"[sandbox]\nport = {port}\n")
    result = run_tuimail(
        "send", "--profile", "sandbox", "--to", "bob@example.test", "--subject", "hi",
        "--body", "hello", timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{port}" in result.stdout + result.stderr


def test_send_to_the_built_in_sandbox_falls_back_from_a_taken_port(isolated_dirs: Path) -> None:
    with held_port() as taken:
        write_config(f"[sandbox]\nport = {taken}\n")
        result = run_tuimail(
            "send", "--profile", "sandbox", "--to", "bob@example.test", "--subject", "hi",
            "--body", "hello", timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"port {taken} is in use" in result.stderr
    assert "the sandbox listens on" in result.stderr
