"""Print pip constraints pinning every dependency of pyproject.toml to its lowest allowed version.

``make test-min`` installs tuimail with these constraints into its own venv
and runs the SMTP tests, so a ``>=`` bound in pyproject.toml is a version we
have seen work, not a guess. A requirement without a lower bound is reported
on stderr and left free (pip then takes the newest, which proves nothing).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement


def lowest(requirement: Requirement) -> str | None:
    """The version a ``>=``, ``==`` or ``~=`` specifier starts at, if there is one."""
    for spec in requirement.specifier:
        if spec.operator in (">=", "==", "~=", "==="):
            return spec.version
    return None


def constraints(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text("utf-8"))["project"]
    texts = list(project.get("dependencies", []))
    for extra in extras:
        texts += project.get("optional-dependencies", {}).get(extra, [])
    lines = []
    for text in texts:
        requirement = Requirement(text)
        version = lowest(requirement)
        if version is None:
            print(f"no lower bound for {requirement.name}: left free", file=sys.stderr)
            continue
        lines.append(f"{requirement.name}=={version}")
    return lines


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    print("\n".join(constraints(root / "pyproject.toml", sys.argv[1:])))
