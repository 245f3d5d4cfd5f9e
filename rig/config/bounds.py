"""The bounds registry: one entry per bounded number of the profile.

Every bounded number has one `Bound`: its unit, default, hard bound and the source of those
figures. Each section's module registers its own bounds (`register_bounds`) before it defines
its model; the models take their defaults from the registry (`field_default`), `Section`'s
validator enforces the bounds, and `docs/configuration.md` carries the table
`bounds_table_markdown()` renders from it (a test keeps the two equal), so a figure is written
down exactly once.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import (
    Field,
)


def format_number(x: float) -> str:
    """`150.0` -> "150", `0.33` -> "0.33", `460800` -> "460800"."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(x)


@dataclass(frozen=True)
class Bound:
    """Default, hard bound and source of one numeric profile field.

    `minimum`/`maximum` are inclusive; `above` is an exclusive lower bound (value > above);
    `choices` lists the only accepted values. A value outside is an error, never a clamp.
    """

    path: str
    unit: str
    default: float
    source: str
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    choices: tuple[int, ...] | None = None

    @property
    def section(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]

    def _with_unit(self, x: float) -> str:
        return f"{format_number(x)} {self.unit}" if self.unit else format_number(x)

    def describe(self) -> str:
        """The hard bound in words, as the docs table shows it: "> 0 and ≤ 150 mmHg"."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        parts: list[str] = []
        if self.above is not None:
            parts.append(f"> {format_number(self.above)}")
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"{format_number(self.minimum)} .. {format_number(self.maximum)}")
        elif self.minimum is not None:
            parts.append(f"≥ {format_number(self.minimum)}")
        elif self.maximum is not None:
            parts.append(f"≤ {format_number(self.maximum)}")
        text = " and ".join(parts) if parts else "none"
        return f"{text} {self.unit}" if self.unit and parts else text

    def violation(self, value: float) -> str | None:
        """What is wrong with `value`, in the message style; None if it is within bounds."""
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            return f"not one of the accepted values {allowed} ({self.source})"
        if self.maximum is not None and value > self.maximum:
            return f"above the hard bound {self._with_unit(self.maximum)} ({self.source})"
        if self.minimum is not None and value < self.minimum:
            return f"below the hard bound {self._with_unit(self.minimum)} ({self.source})"
        if self.above is not None and value <= self.above:
            return f"must be above {self._with_unit(self.above)} ({self.source})"
        return None


SALIVARY: Final = (
    "clinical.md, salivary endoscopy analogue: normal filling 7.5-19 mmHg, "
    "ducts dilate above ~30 mmHg, flushing peaks ~150 mmHg"
)
REVIEW: Final = "engineering choice, needs clinical review"
BENCH: Final = "engineering estimate, to be measured on the bench"

_REGISTRY: dict[str, Bound] = {}

FIELD_BOUNDS: Final[Mapping[str, Bound]] = types.MappingProxyType(_REGISTRY)
"""Every bounded numeric field, by dotted path: the single source of defaults and bounds. It
fills as the section modules are imported; `rig.config` imports them all."""


def register_bounds(*bounds: Bound) -> None:
    """Enter one section's bounds, in the order its documentation lists them."""
    for bound in bounds:
        if bound.path in _REGISTRY:
            raise ValueError(f"{bound.path}: bound registered twice")
        _REGISTRY[bound.path] = bound


def field_default(path: str) -> Any:
    """A pydantic Field whose default and description come from the registry."""
    bound = FIELD_BOUNDS[path]
    unit = f" [{bound.unit}]" if bound.unit else ""
    return Field(default=bound.default, description=f"{bound.source}{unit}")


def bounds_table_markdown() -> str:
    """The registry as a Markdown table (docs/configuration.md carries exactly this text).

    Sections in the order of their names, so the table does not depend on which module was
    imported first; within a section, the order its module registered them in."""
    lines = [
        "| field | unit | default | hard bound | source |",
        "|---|---|---|---|---|",
    ]
    order = {path: i for i, path in enumerate(_REGISTRY)}
    for b in sorted(_REGISTRY.values(), key=lambda b: (b.section, order[b.path])):
        unit = b.unit or "-"
        source = b.source.replace("|", "\\|")
        lines.append(
            f"| `{b.path}` | {unit} | {format_number(b.default)} | {b.describe()} | {source} |"
        )
    return "\n".join(lines) + "\n"
