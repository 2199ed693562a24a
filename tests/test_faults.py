"""Fault rules name stages of the one Stage enum, but only those a server can fault."""

from __future__ import annotations

import pytest

from tuimail.faults import FAULT_STAGES, FaultAction, FaultRule, FaultSpecError, parse_fault
from tuimail.stages import Stage


def test_a_rule_names_a_stage_of_the_shared_enum() -> None:
    rule = parse_fault("rcpt=bob@example.test:452 4.2.2 Mailbox full")
    assert isinstance(rule, FaultRule)
    assert rule.stage is Stage.RCPT and rule.action is FaultAction.REPLY


@pytest.mark.parametrize("stage", ["connect", "tls", "CONNECT"])
def test_a_stage_no_rule_may_name_is_refused_in_the_usual_words(stage: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_fault(f"{stage}:550 no")
    assert str(caught.value) == (
        f"'{stage}:550 no': unknown stage '{stage}'; "
        "use one of greeting, ehlo, auth, mail, rcpt, data, dot"
    )
    assert [s.value for s in FAULT_STAGES] == [
        "greeting",
        "ehlo",
        "auth",
        "mail",
        "rcpt",
        "data",
        "dot",
    ]
