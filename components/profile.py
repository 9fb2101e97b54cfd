"""The two profiles: ``current`` (today's charts) and ``tutorial`` (the walk-through's)."""

from __future__ import annotations

from typing import Literal

Profile = Literal["current", "tutorial"]
PROFILES: tuple[Profile, ...] = ("current", "tutorial")
