"""What a command imported, read from ``python -X importtime``: the send benchmark's import check."""

from __future__ import annotations

from dataclasses import dataclass

#: What setuptools names the editable install's finder module and .pth file.
EDITABLE_MARK = "__editable__"


@dataclass
class ImportReport:
    """What ``tuimail send`` imported, from ``-X importtime``."""

    modules: list[str]
    total_us: int
    #: Modules imported by interpreter start-up (``site`` and its .pth files), not by tuimail.
    startup: set[str]
    #: (cumulative microseconds, module) of the slowest imports, outermost first.
    slowest: list[tuple[int, str]]
    #: (self microseconds, module) of tuimail's own modules.
    tuimail_self: list[tuple[int, str]]
    #: Cumulative microseconds of ``site`` (interpreter start-up, .pth files included).
    site_us: int = 0

    @property
    def textual_imported(self) -> bool:
        return any(m == "textual" or m.startswith("textual.") for m in self.modules)

    @property
    def editable_finder(self) -> bool:
        """Whether start-up loaded setuptools' editable finder (no pip user has it)."""
        return any(EDITABLE_MARK in m for m in self.modules)

    @property
    def top_level(self) -> list[str]:
        return sorted({m.split(".")[0] for m in self.modules})

    @property
    def third_party(self) -> list[str]:
        """Installed distributions among the imports (``-X importtime`` also lists failed tries)."""
        from importlib.metadata import packages_distributions

        owners = packages_distributions()
        after_startup = sorted({m.split(".")[0] for m in self.modules if m not in self.startup})
        return [
            f"{name} ({', '.join(owners[name])})" if owners[name] != [name] else name
            for name in after_startup
            if name != "tuimail" and name in owners
        ]


def parse_importtime(stderr: str) -> ImportReport:
    """Parse ``-X importtime`` lines: ``import time: self | cumulative | name``."""
    modules: list[str] = []
    outer: list[tuple[int, str]] = []
    own: list[tuple[int, str]] = []
    startup: set[str] = set()
    total = 0
    site_us = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        self_us, cumulative_us = int(parts[0]), int(parts[1])
        raw_name = parts[2]
        name = raw_name.strip()
        depth = (len(raw_name) - len(raw_name.lstrip(" ")) - 1) // 2
        modules.append(name)
        if depth == 0:
            total += cumulative_us
            if name == "site":
                # Lines come in post-order: everything so far was start-up.
                startup.update(modules)
                site_us = cumulative_us
        if depth <= 1:
            outer.append((cumulative_us, name))
        if name == "tuimail" or name.startswith("tuimail."):
            own.append((self_us, name))
    outer.sort(reverse=True)
    own.sort(reverse=True)
    return ImportReport(
        modules=modules,
        total_us=total,
        startup=startup,
        slowest=outer[:10],
        tuimail_self=own,
        site_us=site_us,
    )
