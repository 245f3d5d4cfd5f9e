"""The ranges the client commands' help texts quote: the limits of the profile the rig runs.

The running rig's profile (from the note `rig sim` leaves), else the default profile, else the
built-in defaults: help never fails because a profile does not load, it says which it quotes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rig.config import (
    DEFAULT_PROFILE,
    FluidLoopConfig,
    LimitsConfig,
    ProfileError,
    format_number,
    load_profile,
)
from rig.fluid.controller import PRESSURE_MIN_MMHG
from rig.runtime import RunningRig


@dataclass(frozen=True)
class HelpRanges:
    limits: LimitsConfig
    fluid: FluidLoopConfig
    source: str
    """Which profile the figures come from, for the help text."""

    @property
    def flow(self) -> str:
        low = format_number(self.limits.min_flow_for_resistance_ml_min)
        high = format_number(self.limits.max_flow_ml_min)
        return f"saline flow in mL/min, {low} to {high} ({self.source})"

    @property
    def pressure(self) -> str:
        cap = format_number(self.limits.irrigation_pressure_cap_mmhg)
        return (
            f"pressure to hold in mmHg, {format_number(PRESSURE_MIN_MMHG)} to {cap} "
            f"(limits.irrigation_pressure_cap_mmhg, {self.source})"
        )

    @property
    def bolus_volume(self) -> str:
        cap = format_number(self.limits.contrast_volume_cap_ml)
        return (
            f"contrast volume in mL, up to what is left of the {cap} mL cumulative cap "
            f"(limits.contrast_volume_cap_ml, {self.source})"
        )

    @property
    def bolus_rate(self) -> str:
        high = format_number(self.limits.bolus_max_rate_ml_min)
        return (
            f"contrast rate in mL/min, up to {high} (limits.bolus_max_rate_ml_min, {self.source})"
        )

    @property
    def prime(self) -> str:
        return (
            f"fill the line: {format_number(self.fluid.prime_volume_ul)} uL at "
            f"{format_number(self.fluid.prime_rate_ml_min)} mL/min ({self.source}); irrigation, "
            "pressure and bolus need a primed line"
        )


def help_ranges() -> HelpRanges:
    running = RunningRig.load()
    candidates: list[tuple[Path, str]] = []
    if running is not None and running.profile_path:
        candidates.append((Path(running.profile_path), "the running rig's profile"))
    candidates.append((DEFAULT_PROFILE, f"profile {DEFAULT_PROFILE.name}"))
    for path, source in candidates:
        try:
            profile = load_profile(path)
        except (ProfileError, OSError):
            continue
        return HelpRanges(profile.limits, profile.fluid, source)
    return HelpRanges(LimitsConfig(), FluidLoopConfig(), "built-in defaults")
