"""The emulated Pico's transducer and ADC: a pressure bridge read by an ADS1220 as the real board
wires it (gain 128, the bridge's excitation as the reference), as raw 24-bit codes.

code = (offset + pressure) * sensitivity * 128 * 2^23, plus the conversion noise, clipped to
the ADC's full scale. The tests compute the same codes to check a calibration against RpHal's
formula.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

PGA_GAIN = 128
FULL_SCALE = 0x7FFFFF
NOMINAL_SENSITIVITY_UV_PER_V = 5.0
"""The rig's transducer (docs/firmware.md, "Calibrate the transducer")."""


@dataclass
class Bridge:
    sensitivity_uv_per_v: float = NOMINAL_SENSITIVITY_UV_PER_V
    offset_mmhg: float = 4.0
    """The bridge's output at 0 mmHg, as a pressure: what the zero removes."""
    noise_mmhg: float = 0.05
    """Standard deviation of one conversion (the ADS1220's noise at 1000 SPS is a few uV RMS at
    gain 128's input, a few hundredths of a mmHg at 5 V excitation)."""
    rng: random.Random = field(default_factory=lambda: random.Random(1))

    def codes_per_mmhg(self) -> float:
        return self.sensitivity_uv_per_v * 1e-6 * PGA_GAIN * (FULL_SCALE + 1)

    def code(self, pressure_mmhg: float, noisy: bool = True) -> int:
        mmhg = self.offset_mmhg + pressure_mmhg
        if noisy and self.noise_mmhg:
            mmhg += self.rng.gauss(0.0, self.noise_mmhg)
        return max(-FULL_SCALE, min(FULL_SCALE, round(mmhg * self.codes_per_mmhg())))
