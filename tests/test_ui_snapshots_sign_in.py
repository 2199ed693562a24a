"""Snapshots of the OAuth sign-in dialogs (browser and device) at 80x24 and 120x40, and of
the password asked at send time (pytest-textual-snapshot; see tests/test_ui_snapshots.py).

A real sign-in shows a fresh ``state``, a PKCE challenge and a random port
each time, so the dialog here is fed fixed values in place of its worker: the
picture is of what the dialog shows, the flows are tested end to end in
tests/test_ui_oauth_sign_in.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.ui_support import wait_for
from tuimail.profiles import Profile, Security
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.dialogs import SecretDialog, SignInDialog, SignInWay

SnapCompare = Callable[..., bool]

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]

PROFILE = Profile(
    name="work",
    host="smtp.office365.com",
    port=587,
    security=Security.STARTTLS,
    username="alice@example.test",
    from_address="alice@example.test",
    oauth_provider="microsoft",
    oauth_client_id="00000000-0000-0000-0000-000000000000",
)

ADDRESS = (
    "https://login.microsoftonline.com/common/oauth2/v2.0/authorize?response_type=code"
    "&client_id=00000000-0000-0000-0000-000000000000"
    "&redirect_uri=http%3A%2F%2F127.0.0.1%3A40123%2F"
    "&scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send%20offline_access"
    "&state=Zm9yIHRoZSBzbmFwc2hvdCBvbmx5&code_challenge=c25hcHNob3QtY2hhbGxlbmdlLWZpeGVk"
    "&code_challenge_method=S256&login_hint=alice%40example.test"
)


class ShownSignIn(SignInDialog):
    """The dialog once the flow has shown what the user must do, with fixed values."""

    def start(self) -> None:
        if self.way is SignInWay.DEVICE:
            self.show_device_code("https://microsoft.com/devicelogin", "F7K2-9QXB", 900.0)
        else:
            self.show_address(ADDRESS, False, 300.0, "http://127.0.0.1:40123/")


def showing(dialog: Any) -> Callable[[Pilot[Any]], Any]:
    async def push(pilot: Pilot[Any]) -> None:
        pilot.app.push_screen(dialog)
        await wait_for(pilot, lambda: pilot.app.screen is dialog, "the dialog")
        await pilot.pause()

    return push


@pytest.mark.parametrize("size", SIZES)
def test_sign_in_in_the_browser(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    dialog = ShownSignIn(PROFILE, SignInWay.BROWSER)
    app = TuimailApp(start_sandbox=False)
    assert snap_compare(app, terminal_size=size, run_before=showing(dialog))


@pytest.mark.parametrize("size", SIZES)
def test_sign_in_on_another_device(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    dialog = ShownSignIn(PROFILE, SignInWay.DEVICE)
    app = TuimailApp(start_sandbox=False)
    assert snap_compare(app, terminal_size=size, run_before=showing(dialog))


def test_password_asked_at_send_time(snap_compare: SnapCompare) -> None:
    asks = Profile(
        name="asks",
        host="smtp.example.test",
        port=587,
        username="alice",
        from_address="alice@example.test",
        ask_at_send=True,
    )
    app = TuimailApp(start_sandbox=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=showing(SecretDialog(asks)))
