"""How every property test runs, in one place.

With ``CI`` set: a bounded number of examples from a fixed seed, and the
example database stored in the tree (``tests/hypothesis-examples/``), so a
failure in CI fails the same way on a laptop with ``CI=true`` and, once its
example is committed, is tried first forever after. Without ``CI``: fresh
random examples each run (``TUIMAIL_PROPERTY_EXAMPLES=N`` for a longer hunt),
with failures remembered in Hypothesis's own database under ``.hypothesis/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase

_Test = TypeVar("_Test", bound=Callable[..., Any])

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXAMPLES = Path(__file__).parent / "hypothesis-examples"
SEED = 20261204
_LENIENT = [HealthCheck.too_slow, HealthCheck.filter_too_much]


def reproducible(max_examples: int = 150) -> Callable[[_Test], _Test]:
    """Decorate a ``@given`` test: fixed and bounded in CI, exploring elsewhere."""

    def apply(test: _Test) -> _Test:
        if not IN_CI:
            examples = int(os.environ.get("TUIMAIL_PROPERTY_EXAMPLES", max_examples))
            explore = settings(
                max_examples=examples,
                deadline=None,  # no timed assertions: the machine may be loaded
                suppress_health_check=_LENIENT,
                print_blob=True,
            )
            return explore(test)
        fixed = settings(
            max_examples=max_examples,
            deadline=None,
            database=DirectoryBasedExampleDatabase(EXAMPLES),
            suppress_health_check=_LENIENT,
            print_blob=True,
        )(test)
        return seed(SEED)(fixed)

    return apply
