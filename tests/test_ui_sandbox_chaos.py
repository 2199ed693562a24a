"""F5 says how the sandbox misbehaves on purpose, and the app's own sandbox does it.

config.toml's ``[sandbox]`` throttle, recipient limit and accept
probability are the app's settings as much as ``tuimail serve``'s; F5 shows
them whoever serves the sandbox (the app, or a ``tuimail serve`` found running).
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

from tests.test_sandbox_port import free_port, write_config
from tests.test_sandbox_shared import open_f5, serving, until_app_serves
from tests.ui_support import static_text, wait_for
from tuimail.ui.app import TuimailApp


def three_recipients(port: int) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.sendmail(
            "a@example.test",
            ["b@example.test", "c@example.test", "d@example.test"],
            b"From: a@example.test\r\nSubject: many\r\n\r\nhi\r\n",
        )


async def test_the_apps_sandbox_takes_the_chaos_of_config_toml_and_f5_shows_it(
    isolated_dirs: Path,
) -> None:
    write_config(
        f"[sandbox]\nport = {free_port()}\nthrottle_up = 100000\nmax_recipients = 2\n"
        "accept_probability = 1\n"
    )
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await until_app_serves(pilot)
        sandbox = app.model.sandbox
        assert sandbox is not None
        refused = await asyncio.to_thread(three_recipients, sandbox.port)
        assert refused == {"d@example.test": (452, b"4.5.3 Error: too many recipients")}
        await open_f5(pilot, 1)
        status = static_text(app, "#sandbox-status")
        assert "Throttled: client to server 100,000 bytes/s per connection." in status
        assert "At most 2 recipient(s) per message; more are answered 452." in status
        assert "Faults" not in status  # every connection accepted: nothing to say


async def test_f5_describes_the_chaos_of_a_serve_it_found_running(isolated_dirs: Path) -> None:
    port = free_port()
    write_config(f"[sandbox]\nport = {port}\n")
    with serving("--throttle-down", "30000", "--accept-probability", "0.9", "--seed", "1"):
        app = TuimailApp()
        async with app.run_test(size=(120, 40)) as pilot:
            await until_app_serves(pilot)
            assert app.model.sandbox_running is not None
            await open_f5(pilot, 0)
            await wait_for(
                pilot,
                lambda: "Faults: accept p=0.9" in static_text(app, "#sandbox-status"),
                "the accept probability on F5",
            )
            status = static_text(app, "#sandbox-status")
            assert "Throttled: server to client 30,000 bytes/s per connection." in status
