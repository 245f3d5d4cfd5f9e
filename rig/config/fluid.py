"""The [fluid] section: the fluid loop's timing, line model and priming."""

from __future__ import annotations

from typing import ClassVar

from rig.config.base import Section
from rig.config.bounds import (
    BENCH,
    Bound,
    field_default,
    register_bounds,
)

register_bounds(
    Bound(
        "fluid.line_time_constant_ms",
        "ms",
        300.0,
        f"{BENCH}: compliance x outflow resistance",
        1,
        10_000,
    ),
    Bound(
        "fluid.stop_persistence_samples",
        "samples",
        2,
        "engineering choice: consecutive samples beyond a stop threshold before stopping "
        "(one noisy sample does not stop the pump)",
        1,
        50,
    ),
    Bound(
        "fluid.pump_poll_hz",
        "Hz",
        4.0,
        "must feed the pump's safe-mode timeout: 1 / pump_poll_hz < safe_mode_timeout_s / 2",
        1,
        20,
    ),
    Bound(
        "fluid.loop_stall_timeout_ms",
        "ms",
        100.0,
        "engineering choice: the event loop turns every few ms; a stall this long means the "
        "host cannot stop the pump in time, so a watcher thread stops it (well inside the "
        "board watchdog's 250 ms default)",
        20,
        1000,
    ),
    Bound(
        "fluid.nominal_resistance_mmhg_min_per_ml",
        "mmHg·min/mL",
        17.0,
        f"{BENCH}: tubing plus a nominal duct phantom; the plausibility line model predicts "
        "pressure with it until it has learned the duct's own (simulator: tip 15 + tubing 2)",
        maximum=100,
        above=0,
    ),
    Bound(
        "fluid.line_model_tolerance_mmhg",
        "mmHg",
        3.0,
        "engineering choice: measured pressure may differ from the line model's by this much "
        "(15 sigma of 0.2 mmHg noise; below the 5.1 mmHg a stalled pump leaves at 0.3 mL/min); "
        f"{BENCH} on a real duct, whose resistance wanders",
        1,
        20,
    ),
    Bound(
        "fluid.line_model_tolerance_ms",
        "ms",
        300.0,
        "engineering choice: the line model's disagreement must last this long (longer than "
        "the tubing-drop transient of a flow step, 210 ms at 0 -> 3 mL/min)",
        50,
        2000,
    ),
    Bound(
        "fluid.pressure_zero_tolerance_mmhg",
        "mmHg",
        5.0,
        "engineering choice: at self-test the line open to air must read zero within this; "
        "beyond it the transducer, its zero or the line is suspect",
        0.5,
        20,
    ),
    Bound(
        "fluid.pressure_noise_mmhg",
        "mmHg",
        0.2,
        "the transducer and board's noise, one standard deviation of single samples at rest "
        f"(simulator: 0.2); {BENCH}. The resistance-rise window is sized from it: at low flow "
        "pressure / flow is noisy, and the window grows until the rise estimate's noise is a "
        "sixth of the limit (docs/fluid-control.md)",
        0.01,
        2.0,
    ),
    Bound(
        "fluid.rate_update_min_interval_ms",
        "ms",
        100.0,
        "engineering choice: spaces rate commands on the 19200-baud pump line",
        10,
        2000,
    ),
    Bound(
        "fluid.prime_volume_ul",
        "uL",
        300.0,
        "clinical.md: the cannula is primed and air removed before entry; volume is an "
        "engineering choice",
        0,
        2000,
    ),
    Bound(
        "fluid.prime_rate_ml_min",
        "mL/min",
        1.0,
        "engineering choice; must not exceed limits.max_flow_ml_min",
        maximum=10.0,
        above=0,
    ),
)


class FluidLoopConfig(Section):
    _section: ClassVar[str] = "fluid"

    line_time_constant_ms: float = field_default("fluid.line_time_constant_ms")
    stop_persistence_samples: int = field_default("fluid.stop_persistence_samples")
    pump_poll_hz: float = field_default("fluid.pump_poll_hz")
    rate_update_min_interval_ms: float = field_default("fluid.rate_update_min_interval_ms")
    loop_stall_timeout_ms: float = field_default("fluid.loop_stall_timeout_ms")
    nominal_resistance_mmhg_min_per_ml: float = field_default(
        "fluid.nominal_resistance_mmhg_min_per_ml"
    )
    line_model_tolerance_mmhg: float = field_default("fluid.line_model_tolerance_mmhg")
    line_model_tolerance_ms: float = field_default("fluid.line_model_tolerance_ms")
    pressure_zero_tolerance_mmhg: float = field_default("fluid.pressure_zero_tolerance_mmhg")
    pressure_noise_mmhg: float = field_default("fluid.pressure_noise_mmhg")
    prime_volume_ul: float = field_default("fluid.prime_volume_ul")
    prime_rate_ml_min: float = field_default("fluid.prime_rate_ml_min")
