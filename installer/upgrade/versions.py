"""Version numbers of dvp and the upgrade policy between them.

Versions are `MAJOR.MINOR.PATCH` with an optional `-pre` suffix (a pre-release sorts before
its release). An upgrade may move to any patch of the same or the next minor release:
skipping a minor release is refused, because each release's storage migrations and on-host
changes are only tested from the release before it. Crossing a major version is refused
unless from the last minor release (none is supported yet: there is only major 0).
A lower target is a downgrade and needs `--allow-downgrade`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_MINOR_STEP = 1
"""How many minor releases one upgrade may advance."""

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


class VersionError(ValueError):
    pass


@dataclass(frozen=True, order=False)
class Version:
    major: int
    minor: int
    patch: int
    pre: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION.match(text.strip())
        if m is None:
            raise VersionError(f"{text!r} is not a dvp version (MAJOR.MINOR.PATCH, e.g. 0.2.0)")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4) or "")

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        pre = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.pre.split(".")) if self.pre else ()
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()

    def __gt__(self, other: Version) -> bool:
        return self.key() > other.key()

    def __ge__(self, other: Version) -> bool:
        return self.key() >= other.key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.pre}" if self.pre else "")


def jump_refusal(current: str, target: str, *, allow_downgrade: bool) -> str | None:
    """Why upgrading from `current` to `target` is refused, or None when it is allowed."""
    cur, new = Version.parse(current), Version.parse(target)
    if new.key() == cur.key():
        return f"the platform already runs {current}: nothing to upgrade"
    if new < cur:
        if not allow_downgrade:
            return (f"{target} is older than the installed {current}: a downgrade needs --allow-downgrade "
                    "(and a datastore the older version can read)")
        return None
    if new.major != cur.major:
        return (f"{current} -> {target} crosses a major version, which no release supports yet; "
                f"upgrade to the last {cur.major}.x release first")
    if new.minor - cur.minor > MAX_MINOR_STEP:
        step = f"{cur.major}.{cur.minor + 1}"
        return (f"{current} -> {target} skips {new.minor - cur.minor - 1} minor release(s); one upgrade may "
                f"advance at most {MAX_MINOR_STEP} minor release: upgrade to the latest {step}.x first")
    return None
