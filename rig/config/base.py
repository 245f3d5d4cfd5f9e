"""The base of every profile section: frozen, strict, no unknown keys, hard bounds."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from rig.config.bounds import FIELD_BOUNDS


class Section(BaseModel):
    """Frozen, strict, no unknown keys; numeric fields checked against FIELD_BOUNDS."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    _section: ClassVar[str] = ""

    @field_validator("*", mode="after")
    @classmethod
    def _within_hard_bounds(cls, value: Any, info: ValidationInfo) -> Any:
        bound = FIELD_BOUNDS.get(f"{cls._section}.{info.field_name}")
        if bound is not None and isinstance(value, int | float):
            message = bound.violation(value)
            if message is not None:
                raise PydanticCustomError("hard_bound", "{message}", {"message": message})
        return value
