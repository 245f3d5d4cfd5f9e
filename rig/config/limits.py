"""The [limits] section: the supervision limits of the fluid loop, each with its source."""

from __future__ import annotations

from typing import ClassVar

from pydantic import (
    model_validator,
)

from rig.config.base import Section
from rig.config.bounds import (
    REVIEW,
    SALIVARY,
    Bound,
    field_default,
    format_number,
    register_bounds,
)
from rig.config.errors import Problem, cross_check

register_bounds(
    Bound(
        "limits.max_pressure_mmhg",
        "mmHg",
        40.0,
        f"{SALIVARY}; hysteroscopy pumps set 15-150 mmHg",
        maximum=150,
        above=0,
    ),
    Bound(
        "limits.irrigation_pressure_cap_mmhg",
        "mmHg",
        30.0,
        "clinical.md: at most 400 daPa (≈ 30 mmHg) recommended for salivary endoscopy",
        maximum=150,
        above=0,
    ),
    Bound(
        "limits.backoff_start_mmhg",
        "mmHg",
        22.0,
        "engineering choice: flow is reduced linearly from here to the irrigation cap",
        minimum=0,
        maximum=150,
    ),
    Bound(
        "limits.board_cutoff_mmhg",
        "mmHg",
        80.0,
        "clinical.md: arthroscopy pumps stop at 300 mmHg (also the transducer's top, rig.md); "
        "the board's independent cut-off sits well under",
        maximum=300,
        above=0,
    ),
    Bound(
        "limits.max_flow_ml_min",
        "mL/min",
        3.0,
        f"{REVIEW}: irrigation runs at about 1 mL/min",
        maximum=10.0,
        above=0,
    ),
    Bound(
        "limits.max_resistance_mmhg_min_per_ml",
        "mmHg·min/mL",
        40.0,
        "R = pressure / flow: normal filling 7.5-19 mmHg (clinical.md) at about 1 mL/min "
        f"gives 7.5-19; stop at about twice the top of normal ({REVIEW})",
        maximum=200,
        above=0,
    ),
    Bound(
        "limits.max_resistance_rise_mmhg_min_per_ml_per_s",
        "mmHg·min/mL/s",
        25.0,
        "clinical.md occlusion: a trend alarm beat a fixed threshold (0.4 min vs up to 2 h); "
        f"value is an {REVIEW}",
        maximum=500,
        above=0,
    ),
    Bound(
        "limits.leak_resistance_fraction",
        "",
        0.5,
        "clinical.md: hysteroscopy pumps alarm on a high deficit rate (perforation sign); "
        f"resistance falling while flow continues = leak; fraction is an {REVIEW}",
        0.05,
        0.95,
    ),
    Bound(
        "limits.saline_volume_cap_ml",
        "mL",
        10.0,
        f"one syringe (syringe.volume_ml): the rig has no refill; {REVIEW}; no clinical source",
        maximum=100,
        above=0,
    ),
    Bound(
        "limits.contrast_volume_cap_ml",
        "mL",
        3.0,
        "clinical.md, rig.md: ductography uses about 0.2-3 mL of contrast",
        maximum=5.0,
        above=0,
    ),
    Bound(
        "limits.bolus_max_rate_ml_min",
        "mL/min",
        0.5,
        f"clinical.md, rig.md: contrast is injected slowly; rate is an {REVIEW}",
        maximum=2.0,
        above=0,
    ),
    Bound(
        "limits.post_release_bolus_max_ul",
        "uL",
        500.0,
        "clinical.md: ECRI criterion, post-release bolus at most 0.5 mL",
        maximum=500,
        above=0,
    ),
    Bound(
        "limits.relief_withdraw_ul",
        "uL",
        20.0,
        "clinical.md: arthroscopy pumps reverse to relieve pressure. The most one relief "
        "withdraw takes back after a pressure or resistance stop (0 = off): what the line holds "
        "at the 40 mmHg limit is 13 uL on the simulated line; the volume is an "
        f"{REVIEW}",
        0,
        50,
    ),
    Bound(
        "limits.relief_target_mmhg",
        "mmHg",
        5.0,
        "the relief withdraws what the line's compliance holds above this pressure, so the "
        "post-release bolus (IEC 60601-2-24's occlusion test, clinical.md) is about this times "
        "the compliance, 1.7 uL on the simulated line; at 0 the line would be pulled to "
        f"suction; {REVIEW}",
        0,
        20,
    ),
    Bound(
        "limits.min_flow_for_resistance_ml_min",
        "mL/min",
        0.1,
        "resistance = pressure / flow is undefined at zero flow; engineering choice",
        maximum=1.0,
        above=0,
    ),
)


class LimitsConfig(Section):
    """Supervision limits of the fluid loop; see FIELD_BOUNDS for each one's source."""

    _section: ClassVar[str] = "limits"

    max_pressure_mmhg: float = field_default("limits.max_pressure_mmhg")
    irrigation_pressure_cap_mmhg: float = field_default("limits.irrigation_pressure_cap_mmhg")
    backoff_start_mmhg: float = field_default("limits.backoff_start_mmhg")
    board_cutoff_mmhg: float = field_default("limits.board_cutoff_mmhg")
    max_flow_ml_min: float = field_default("limits.max_flow_ml_min")
    max_resistance_mmhg_min_per_ml: float = field_default("limits.max_resistance_mmhg_min_per_ml")
    max_resistance_rise_mmhg_min_per_ml_per_s: float = field_default(
        "limits.max_resistance_rise_mmhg_min_per_ml_per_s"
    )
    leak_resistance_fraction: float = field_default("limits.leak_resistance_fraction")
    saline_volume_cap_ml: float = field_default("limits.saline_volume_cap_ml")
    contrast_volume_cap_ml: float = field_default("limits.contrast_volume_cap_ml")
    bolus_max_rate_ml_min: float = field_default("limits.bolus_max_rate_ml_min")
    post_release_bolus_max_ul: float = field_default("limits.post_release_bolus_max_ul")
    relief_withdraw_ul: float = field_default("limits.relief_withdraw_ul")
    relief_target_mmhg: float = field_default("limits.relief_target_mmhg")
    min_flow_for_resistance_ml_min: float = field_default("limits.min_flow_for_resistance_ml_min")

    @model_validator(mode="after")
    def _ordered(self) -> LimitsConfig:
        p: list[Problem] = []
        if self.irrigation_pressure_cap_mmhg >= self.max_pressure_mmhg:
            p.append(
                Problem(
                    "limits.irrigation_pressure_cap_mmhg",
                    self.irrigation_pressure_cap_mmhg,
                    "must be below limits.max_pressure_mmhg "
                    f"({format_number(self.max_pressure_mmhg)} mmHg)",
                )
            )
        if self.backoff_start_mmhg >= self.irrigation_pressure_cap_mmhg:
            p.append(
                Problem(
                    "limits.backoff_start_mmhg",
                    self.backoff_start_mmhg,
                    "must be below limits.irrigation_pressure_cap_mmhg "
                    f"({format_number(self.irrigation_pressure_cap_mmhg)} mmHg)",
                )
            )
        if self.board_cutoff_mmhg <= self.max_pressure_mmhg:
            p.append(
                Problem(
                    "limits.board_cutoff_mmhg",
                    self.board_cutoff_mmhg,
                    "must be above limits.max_pressure_mmhg "
                    f"({format_number(self.max_pressure_mmhg)} mmHg): the board's cut-off "
                    "backs up the host's stop, it must not pre-empt it",
                )
            )
        if self.bolus_max_rate_ml_min > self.max_flow_ml_min:
            p.append(
                Problem(
                    "limits.bolus_max_rate_ml_min",
                    self.bolus_max_rate_ml_min,
                    "must not exceed limits.max_flow_ml_min "
                    f"({format_number(self.max_flow_ml_min)} mL/min)",
                )
            )
        if self.bolus_max_rate_ml_min < self.min_flow_for_resistance_ml_min:
            p.append(
                Problem(
                    "limits.bolus_max_rate_ml_min",
                    self.bolus_max_rate_ml_min,
                    "must be at least limits.min_flow_for_resistance_ml_min "
                    f"({format_number(self.min_flow_for_resistance_ml_min)} mL/min): a slower "
                    "bolus cannot be supervised",
                )
            )
        if self.min_flow_for_resistance_ml_min >= self.max_flow_ml_min:
            p.append(
                Problem(
                    "limits.min_flow_for_resistance_ml_min",
                    self.min_flow_for_resistance_ml_min,
                    "must be below limits.max_flow_ml_min "
                    f"({format_number(self.max_flow_ml_min)} mL/min)",
                )
            )
        cross_check(p)
        return self
