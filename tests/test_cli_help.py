"""Every `rig` command and option explains itself; the fluid options quote their units and the
profile's ranges."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from rig.cli.main import build_parser
from rig.config import DEFAULT_PROFILE, load_profile


def _parsers(
    parser: argparse.ArgumentParser, name: str = "rig"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _subcommand_help(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    helps: dict[str, str | None] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                helps[choice.dest] = choice.help
    return helps


@pytest.fixture(autouse=True)
def no_running_rig(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """The ranges come from the default profile, not from whatever rig runs on this machine."""
    monkeypatch.setenv("RIG_RUNTIME_DIR", str(tmp_path))


def test_every_command_and_option_has_a_help_text() -> None:
    missing = []
    for name, parser in _parsers(build_parser()):
        missing += [f"{name} {cmd}" for cmd, text in _subcommand_help(parser).items() if not text]
        for action in parser._actions:
            if action.option_strings and action.help in (None, ""):
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []


def test_the_estop_and_selftest_commands_exist() -> None:
    commands = _subcommand_help(build_parser())
    assert "estop" in commands and "selftest" in commands


def test_fluid_options_quote_units_and_the_profiles_ranges() -> None:
    limits = load_profile(DEFAULT_PROFILE).limits
    parsers = dict(_parsers(build_parser()))
    helps = {
        action.dest: action.help or ""
        for name in ("rig fluid irrigate", "rig fluid hold-pressure", "rig fluid bolus")
        for action in parsers[name]._actions
    }
    assert (
        f"mL/min, {limits.min_flow_for_resistance_ml_min:g} to {limits.max_flow_ml_min:g}"
        in (helps["flow_ml_min"])
    )
    assert f"mmHg, 1 to {limits.irrigation_pressure_cap_mmhg:g}" in helps["mmhg"]
    assert f"{limits.contrast_volume_cap_ml:g} mL" in helps["volume_ml"]
    assert f"up to {limits.bolus_max_rate_ml_min:g}" in helps["rate_ml_min"]
