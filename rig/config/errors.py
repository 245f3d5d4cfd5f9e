"""What is wrong with a profile: `Problem`s, and the errors that carry them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, NamedTuple

from rig.config.bounds import format_number


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


MISSING: Final = _Missing()
"""The `value` of a Problem for a required field that was not given."""


def format_value(value: object, limit: int = 80) -> str:
    """A value as the profile would spell it (TOML-ish), shortened to `limit` characters."""
    text = spell_value(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def spell_value(value: object) -> str:
    if value is MISSING:
        return "(missing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k} = {spell_value(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(spell_value(v) for v in value) + "]"
    return repr(value)


class Problem(NamedTuple):
    """One thing wrong with a profile: where, what was given, what was expected."""

    path: str
    value: object
    expected: str

    def __str__(self) -> str:
        if not self.path:
            return self.expected
        return f"{self.path} = {format_value(self.value)}: {self.expected}"


class ProfileError(ValueError):
    """A profile that cannot be used. `problems` holds every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem], source: Path | None = None) -> None:
        self.problems: list[Problem] = list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class CrossFieldError(ValueError):
    """Raised inside model validators; carries full-path problems through pydantic."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def cross_check(problems: list[Problem]) -> None:
    if problems:
        raise CrossFieldError(problems)
