"""Reading a profile from TOML and writing a resolved one back."""

from __future__ import annotations

import difflib
import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pydantic import (
    BaseModel,
    ValidationError,
)

from rig.config.errors import MISSING, CrossFieldError, Problem, ProfileError, spell_value
from rig.config.ports import (
    PORT_TAGS,
    TAG_MODELS,
    ConsolePort,
    PathPort,
    SimPort,
    UsbMatch,
    UsbPort,
)
from rig.config.profile import RigProfile

CONFIG_DIR: Final = Path(__file__).resolve().parents[2] / "config"
"""The repository's `config/` folder (the package is installed editable)."""

DEFAULT_PROFILE: Final = CONFIG_DIR / "sim.toml"
"""The simulator profile: what the daemon and CLI use when no profile is named."""
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def load_profile(path: Path) -> RigProfile:
    """Read and validate the profile at `path`.

    Raises OSError when the file cannot be read and ProfileError when it is not a valid profile
    (TOML syntax included). Relative `broker.password_file`, `broker.tls_ca_file` and
    `broker.camera_password_file` paths are taken relative to the profile's folder.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            [Problem("", MISSING, f"not UTF-8 text (byte {exc.start}): TOML files are UTF-8")],
            source=path,
        ) from None
    try:
        return parse_profile(text, base_dir=path.parent)
    except ProfileError as exc:
        exc.source = path
        raise


def parse_profile(text: str, base_dir: Path | None = None) -> RigProfile:
    """Validate a profile given as TOML text; relative file paths resolve against `base_dir`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        if match is not None:
            where = f"line {match.group(1)}, column {match.group(2)}"
            message = f"TOML syntax error at {where}: {message[: match.start()]}"
        else:
            message = f"TOML syntax error: {message}"
        raise ProfileError([Problem("", MISSING, message)]) from None
    profile = validate_profile(raw)
    if base_dir is None:
        return profile
    return _resolve_files(profile, base_dir)


def validate_profile(data: Mapping[str, object]) -> RigProfile:
    """Validate already-parsed profile data; raises ProfileError listing every problem."""
    try:
        return RigProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(_problems(exc, data)) from None


def _resolve_files(profile: RigProfile, base_dir: Path) -> RigProfile:
    broker = profile.broker
    update: dict[str, Path] = {}
    for name in ("password_file", "tls_ca_file", "camera_password_file"):
        value = getattr(broker, name)
        if value is not None and not value.is_absolute():
            update[name] = base_dir / value
    if not update:
        return profile
    return profile.model_copy(update={"broker": broker.model_copy(update=update)})


def _problems(exc: ValidationError, data: Mapping[str, object]) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(part for part in err["loc"] if part not in PORT_TAGS.values())
        path = ".".join(str(part) for part in loc)
        kind = err["type"]
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, CrossFieldError):
            problems.extend(cause.problems)
        elif kind == "missing":
            problems.append(Problem(path, MISSING, "required"))
        elif kind == "extra_forbidden":
            problems.append(Problem(path, err["input"], _unknown_key(err["loc"])))
        else:
            problems.append(Problem(path or "(profile)", err["input"], err["msg"]))
    return problems


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    known = _known_keys(loc[:-1])
    if not known:
        return "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return "unknown key (expected one of: " + ", ".join(known) + ")"


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model at `loc` accepts (empty if it cannot be told)."""
    model: type[BaseModel] | None = RigProfile
    for part in loc:
        if part in TAG_MODELS:
            model = TAG_MODELS[str(part)]
            continue
        field = model.model_fields.get(str(part)) if model is not None else None
        if field is None:
            return []
        model = _model_in(field.annotation)
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------------------------
# Writing a resolved profile back out.
# --------------------------------------------------------------------------------------------

_INLINE_MODELS: Final = (PathPort, UsbPort, SimPort, ConsolePort, UsbMatch)


def _toml_scalar(value: object) -> str:
    if isinstance(value, _INLINE_MODELS):
        parts = []
        for name in type(value).model_fields:
            item = getattr(value, name)
            if item is None:
                continue
            if name in ("vid", "pid") and isinstance(item, int):
                parts.append(f"{name} = 0x{item:04x}")
            else:
                parts.append(f"{name} = {_toml_scalar(item)}")
        return "{ " + ", ".join(parts) + " }"
    if isinstance(value, float):
        return repr(value)
    return spell_value(value)


def dump_profile_toml(profile: RigProfile) -> str:
    """The fully resolved profile (defaults filled in) as TOML that `parse_profile` reads back."""
    lines: list[str] = []

    def table(prefix: str, model: BaseModel) -> None:
        nested: list[tuple[str, BaseModel]] = []
        body: list[str] = []
        for name in type(model).model_fields:
            value = getattr(model, name)
            if value is None:
                continue
            if isinstance(value, BaseModel) and not isinstance(value, _INLINE_MODELS):
                nested.append((f"{prefix}.{name}" if prefix else name, value))
            else:
                body.append(f"{name} = {_toml_scalar(value)}")
        if prefix and (body or not nested):
            lines.extend(["", f"[{prefix}]"])
        lines.extend(body)
        for sub_prefix, sub in nested:
            table(sub_prefix, sub)

    table("", profile)
    return "\n".join(lines).lstrip("\n") + "\n"
