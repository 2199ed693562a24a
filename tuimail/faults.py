"""Fault injection for the sandbox: make a well-behaved server misbehave on cue.

A rule names a stage of the SMTP conversation and what the server does there
instead of its normal answer. Rules come from ``tuimail serve --fault SPEC``
or from Python (the tests and the app), and can be changed while the server
runs. Apart from the rules, a plan may take only some connections, as
MailHog's Jim does: with an accept probability below 1, each new connection
is greeted ``421`` and closed at random (``--accept-probability``), drawn
from the plan's seeded generator like the rules' ``p=``. The syntax, also
shown by ``tuimail serve --help``::

    STAGE[=ADDRESS]:ACTION[ p=PROBABILITY]
    greylist[:SECONDS]

    STAGE    greeting, ehlo, auth, mail, rcpt, data, dot (after the final dot)
    ADDRESS  only for mail/rcpt: apply to this sender/recipient only
    ACTION   CODE [TEXT]     reply with this code and text instead
             delay SECONDS   wait, then answer normally
             disconnect      close the connection without a reply

    rcpt:550 5.1.1 No such user
    rcpt=bob@example.test:452 4.2.2 Mailbox full
    greeting:421 4.3.2 Too busy, try later
    dot:451 4.3.0 Try again p=0.5
    data:delay 3
    dot:disconnect
    greylist:60      4xx on the first try of a sender/recipient pair; accept after 60 s
"""

from __future__ import annotations

import enum
import random
import re
import threading
import time
from dataclasses import dataclass, field

from tuimail.errors import TuimailError
from tuimail.stages import Stage

GREYLIST_REPLY = "451 4.7.1 Greylisted, please try again later"
#: The greeting of a connection the accept probability turned away; closed after it.
NOT_ACCEPTED_REPLY = "421 4.3.2 Service not available, try again later"
#: Sender/recipient pairs remembered by the greylist; the oldest is forgotten first.
MAX_GREYLIST_PAIRS = 10_000


#: The stages a fault rule may name, in the order ``--fault`` lists them.
FAULT_STAGES: tuple[Stage, ...] = (
    Stage.GREETING,
    Stage.EHLO,
    Stage.AUTH,
    Stage.MAIL,
    Stage.RCPT,
    Stage.DATA,
    Stage.DOT,
)


class FaultAction(enum.StrEnum):
    REPLY = "reply"
    DELAY = "delay"
    DISCONNECT = "disconnect"


class FaultSpecError(TuimailError, ValueError):
    """A ``--fault`` text that cannot be understood; says what was expected."""


@dataclass(frozen=True)
class FaultRule:
    stage: Stage
    action: FaultAction
    reply: str = ""
    delay: float = 0.0
    probability: float = 1.0
    address: str = ""

    def applies_to(self, stage: Stage, address: str) -> bool:
        if stage is not self.stage:
            return False
        return not self.address or self.address.lower() == address.lower()

    def describe(self) -> str:
        target = f"={self.address}" if self.address else ""
        if self.action is FaultAction.REPLY:
            what = self.reply
        elif self.action is FaultAction.DELAY:
            what = f"delay {self.delay:g}"
        else:
            what = "disconnect"
        chance = f" p={self.probability:g}" if self.probability < 1 else ""
        return f"{self.stage.value}{target}:{what}{chance}"


@dataclass(frozen=True)
class Greylist:
    """4xx for an unseen sender/recipient pair, accepted once ``min_delay`` has passed."""

    min_delay: float = 0.0

    def describe(self) -> str:
        return f"greylist:{self.min_delay:g}"


_REPLY_RE = re.compile(r"^[2-5]\d\d(?:[ -].*)?$")
_PROBABILITY_RE = re.compile(r"\s+p=([0-9.]+)\s*$")


def parse_fault(spec: str) -> FaultRule | Greylist:
    """Parse one ``--fault`` value."""
    text = spec.strip()
    if text == "greylist" or text.startswith("greylist:"):
        _, _, seconds = text.partition(":")
        return Greylist(_number(seconds or "0", spec, "greylist seconds"))
    probability = 1.0
    match = _PROBABILITY_RE.search(text)
    if match:
        probability = _number(match.group(1), spec, "probability")
        if not 0 < probability <= 1:
            raise FaultSpecError(f"{spec!r}: the probability p= must be above 0 and at most 1")
        text = text[: match.start()]
    head, sep, action_text = text.partition(":")
    if not sep or not action_text.strip():
        raise FaultSpecError(
            f"{spec!r}: expected STAGE:ACTION, for example 'rcpt:550 5.1.1 No such user'"
        )
    stage_text, _, address = head.partition("=")
    stage = next((s for s in FAULT_STAGES if s.value == stage_text.strip().lower()), None)
    if stage is None:
        stages = ", ".join(s.value for s in FAULT_STAGES)
        raise FaultSpecError(f"{spec!r}: unknown stage {stage_text!r}; use one of {stages}")
    if address and stage not in (Stage.MAIL, Stage.RCPT):
        raise FaultSpecError(f"{spec!r}: only the mail and rcpt stages take =ADDRESS")
    action_text = action_text.strip()
    if action_text == "disconnect":
        return FaultRule(stage, FaultAction.DISCONNECT, probability=probability, address=address)
    if action_text.startswith("delay"):
        delay = _number(action_text.removeprefix("delay").strip(), spec, "delay seconds")
        return FaultRule(
            stage, FaultAction.DELAY, delay=delay, probability=probability, address=address
        )
    if _REPLY_RE.match(action_text) and "\r" not in action_text and "\n" not in action_text:
        if stage is Stage.GREETING and action_text.startswith("2"):
            raise FaultSpecError(f"{spec!r}: a greeting fault must not be a 2xx reply")
        return FaultRule(
            stage, FaultAction.REPLY, reply=action_text, probability=probability, address=address
        )
    raise FaultSpecError(
        f"{spec!r}: the action must be a reply such as '451 4.3.0 Try later', "
        "'delay SECONDS' or 'disconnect'"
    )


def _number(text: str, spec: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FaultSpecError(f"{spec!r}: {what} must be a number, not {text!r}") from None
    if value < 0 or value > 3600:
        raise FaultSpecError(f"{spec!r}: {what} must be between 0 and 3600")
    return value


@dataclass
class FaultPlan:
    """The rules in force; safe to change from another thread while the server runs."""

    rules: list[FaultRule] = field(default_factory=list)
    greylist: Greylist | None = None
    seed: int | None = None
    #: The chance that a new connection is served (1: every one; 0: none).
    accept_probability: float = 1.0
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _first_seen: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.accept_probability <= 1:
            raise FaultSpecError(
                f"the accept probability {self.accept_probability!r} must be from 0 to 1"
            )
        self._random = random.Random(self.seed)

    @classmethod
    def from_specs(
        cls, specs: list[str], seed: int | None = None, accept_probability: float = 1.0
    ) -> FaultPlan:
        plan = cls(seed=seed, accept_probability=accept_probability)
        for spec in specs:
            plan.add(parse_fault(spec))
        return plan

    def add(self, rule: FaultRule | Greylist) -> None:
        with self._lock:
            if isinstance(rule, Greylist):
                self.greylist = rule
            else:
                self.rules = [*self.rules, rule]

    def clear(self) -> None:
        with self._lock:
            self.rules = []
            self.greylist = None
            self._first_seen.clear()

    def describe(self) -> list[str]:
        described = [rule.describe() for rule in self.rules]
        if self.greylist:
            described.append(self.greylist.describe())
        if self.accept_probability < 1:
            described.append(f"accept p={self.accept_probability:g}")
        return described

    def accepts_connection(self) -> bool:
        """Whether a new connection is served, drawn with the accept probability."""
        with self._lock:
            chance = self.accept_probability
            return chance >= 1 or (chance > 0 and self._random.random() < chance)

    def decide(self, stage: Stage, address: str = "") -> FaultRule | None:
        """The rule that fires now at ``stage``, if any (first matching rule wins)."""
        with self._lock:
            for rule in self.rules:
                if rule.applies_to(stage, address) and (
                    rule.probability >= 1 or self._random.random() < rule.probability
                ):
                    return rule
        return None

    def greylisted(self, sender: str, recipient: str) -> bool:
        """True when this pair must be told to come back later."""
        with self._lock:
            if self.greylist is None:
                return False
            key = (sender.lower(), recipient.lower())
            now = time.monotonic()
            if key not in self._first_seen:
                if len(self._first_seen) >= MAX_GREYLIST_PAIRS:
                    self._first_seen.pop(next(iter(self._first_seen)))
                self._first_seen[key] = now
                return True
            return now - self._first_seen[key] < self.greylist.min_delay
