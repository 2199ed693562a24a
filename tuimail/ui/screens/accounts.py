"""Accounts: list, add, edit, delete and test profiles. Passwords go to the keyring."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Label, Static

from tuimail.accounts import remove_account
from tuimail.accounts import save_account as store_account
from tuimail.credentials import KeyringError
from tuimail.errors import NotFound
from tuimail.profiles import Profile, ProfileError, ProfileStoreError
from tuimail.ui.history import RunKind, SessionRun
from tuimail.ui.messages import ConnectionTestRequest, ProfilesChanged
from tuimail.ui.model import read_profiles
from tuimail.ui.outside import cell, shown
from tuimail.ui.screens.base import ModelScreen
from tuimail.ui.screens.dialogs import AccountDialog, AccountForm, ConfirmDialog, SaveRefused
from tuimail.ui.widgets.mode_bar import ModeBar
from tuimail.ui.widgets.transcript_view import TranscriptView
from tuimail.ui.words import SANDBOX_NOT_DELETED, profile_warnings, where_the_secret_is


def save_account_form(form: AccountForm) -> tuple[str, list[str]]:
    """Save what the account dialog returned; ``(problem, leftovers)`` in words.

    The core of the dialog's save, outside the widget so it runs (and is
    tested) without a screen: an empty problem means the profile and its
    password were both saved; otherwise neither changed.
    """
    refused, leftovers = save_account_outcome(form)
    return (refused.words if refused else ""), leftovers


def save_account_outcome(form: AccountForm) -> tuple[SaveRefused | None, list[str]]:
    """:func:`save_account_form`, its refusal saying whether the keyring refused (the
    dialog then offers a password command or asking at send time)."""
    password = form.password
    try:
        leftovers = store_account(
            form.profile,
            original_name=form.original_name,
            password=password,
            client_secret=form.client_secret,
        )
    except KeyringError as exc:
        return SaveRefused(f"Keyring: {exc.message}.\nFix: {exc.fix}", keyring=True), []
    except NotFound as exc:
        return SaveRefused(str(exc)), []
    except (ProfileError, ProfileStoreError) as exc:
        return SaveRefused(str(exc)), []
    return None, leftovers


class AccountsScreen(ModelScreen):
    BINDINGS = [
        Binding("a", "add", "Add", id="accounts.add"),
        Binding("e", "edit", "Edit", id="accounts.edit"),
        Binding("d", "delete", "Delete", id="accounts.delete"),
        Binding("t", "test", "Test", id="accounts.test"),
    ]

    def compose(self) -> ComposeResult:
        yield ModeBar("accounts")
        with Vertical():
            yield DataTable(id="profiles", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="account-actions"):
                yield Button("Add", id="add", compact=True)
                yield Button("Edit", id="edit", compact=True)
                yield Button("Delete", id="delete", compact=True, variant="error")
                yield Button("Test connection", id="test", compact=True, variant="primary")
            yield Static("", id="account-problem", markup=False)
            yield Label("Connection test", classes="pane-title")
            yield TranscriptView(id="test-view")
        yield Footer()

    def on_mount(self) -> None:
        model = self.model
        model.profiles_changed.subscribe(self, self._profiles_changed)
        model.session_started.subscribe(self, self._session_started)
        model.session_finished.subscribe(self, self._session_finished)
        model.follow_live(self.query_one("#test-view", TranscriptView))
        table = self.query_one("#profiles", DataTable)
        table.add_columns("Name", "Server", "Security", "User", "From", "Notes")
        self.reload()

    def _profiles_changed(self, change: ProfilesChanged) -> None:
        """The app's profiles changed (or the sandbox started)."""
        self.reload(change.select)

    def reload(self, select: str | None = None) -> None:
        """Fill the table again, the cursor on ``select`` (a profile just saved) or else on
        the row it was on: the next ``t`` tests the profile the user was looking at."""
        table = self.query_one("#profiles", DataTable)
        if select is None and table.row_count:
            row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
            select = str(row_key.value)
        table.clear()
        for profile in self.model.all_profiles().values():
            notes = "; ".join(profile_warnings(profile))
            if profile.name == "sandbox":
                notes = "built-in local capture server" + (f"; {notes}" if notes else "")
            running = not self.model.sandbox_unavailable(profile)
            cells = (
                profile.name,
                profile.address if running else "not running",
                profile.security.label,
                profile.username or "—",
                profile.from_address or "—",
                notes,
            )
            # Text, not str: DataTable parses str cells as markup ("[::1]", "[x]");
            # escaped: profiles.toml is a file anyone may have edited.
            table.add_row(*(cell(text) for text in cells), key=profile.name)
        if select is not None and select in table.rows:
            table.move_cursor(row=table.get_row_index(select), animate=False)

    def _selected(self) -> Profile | None:
        table = self.query_one("#profiles", DataTable)
        if table.row_count == 0:
            return None
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self.model.all_profiles().get(str(row_key.value))

    def show_problem(self, text: str) -> None:
        """Show a problem under the table ("" hides it); several are one per line."""
        problem = self.query_one("#account-problem", Static)
        problem.update("\n".join(shown(line) for line in text.split("\n")))
        problem.set_class(bool(text), "-shown")

    # -- actions ------------------------------------------------------------

    def action_add(self) -> None:
        self.app.push_screen(AccountDialog(save=self._store))

    def action_edit(self) -> None:
        profile = self._selected()
        if profile is None or (profile.name == "sandbox" and not self._is_saved(profile)):
            self.notify("The built-in sandbox profile cannot be edited.", severity="warning")
            return
        self.app.push_screen(AccountDialog(profile, save=self._store))

    def _is_saved(self, profile: Profile) -> bool:
        return profile.name in self.model.saved_profiles

    def _store(self, form: AccountForm) -> SaveRefused | None:
        """The account dialog's save, in its worker thread: None when saved, else why not.

        Through :func:`tuimail.accounts.save_account` (checks, file, keyring
        last, undo). A refusal goes back to the dialog, which stays open with
        what was typed; a save updates every view of the profiles from here,
        so it counts even if the dialog was cancelled while it ran.
        """
        refused, leftovers = save_account_outcome(form)
        if refused is not None:
            return refused
        loaded = read_profiles()  # here, in the thread: the UI loop reads no file
        self.app.call_from_thread(self.model.set_profiles, loaded, form.profile.name)
        self.app.call_from_thread(self._after_save, form.profile, leftovers)
        return None

    def _after_save(self, profile: Profile, leftovers: list[str]) -> None:
        self.show_problem("\n".join(leftovers))
        self.notify(shown(f"Saved {profile.name}; {where_the_secret_is(profile)}."), markup=False)

    def action_delete(self) -> None:
        profile = self._selected()
        if profile is None or not self._is_saved(profile):
            self.notify(SANDBOX_NOT_DELETED, severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.delete_account(profile)

        self.app.push_screen(
            ConfirmDialog(f"Delete profile {profile.name} and its keyring entry?", "Delete"),
            confirmed,
        )

    @work(thread=True, exclusive=True, group="accounts", exit_on_error=False)
    def delete_account(self, profile: Profile) -> None:
        try:
            remove_account(profile.name)
        except KeyringError as exc:
            self.app.call_from_thread(
                self.show_problem, f"Profile removed, password not: {exc.message}.\nFix: {exc.fix}"
            )
        except (NotFound, ProfileStoreError) as exc:
            self.app.call_from_thread(self.show_problem, str(exc))
            return
        self.app.call_from_thread(self.model.set_profiles, read_profiles())

    def action_test(self) -> None:
        profile = self._selected()
        if profile is None:
            return
        if self.model.busy:
            self.notify("A session is already running.", severity="warning")
            return
        if self.model.sandbox_unavailable(profile):
            note = self.model.sandbox_note or "The sandbox is not running."
            self.show_problem(note)
            return
        self.model.start(ConnectionTestRequest(profile))

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {"add": self.action_add, "edit": self.action_edit,
                   "delete": self.action_delete, "test": self.action_test}  # fmt: skip
        if event.button.id in actions:
            actions[event.button.id]()

    # -- sessions (from the model's signals) ---------------------------------

    def _session_started(self, run: SessionRun) -> None:
        if run.kind is RunKind.TEST:
            self.query_one("#test-view", TranscriptView).show(run.transcript)

    def _session_finished(self, run: SessionRun) -> None:
        if run.kind is RunKind.TEST and run.report is not None:
            failure = run.report.failure
            if failure is None:
                self.notify(f"{run.profile_name}: connection test passed; no mail was sent.")
            else:
                self.show_problem(f"✗ {failure.stage.value} failed: {failure.explanation}")
