"""The checks that stop the saline: each condition must hold for N consecutive samples.

Persistence filters single noisy samples; the board timestamp of the *first* sample of the run
over the limit is kept, because that is the moment the hazard was visible, and the stop latency
is measured from it.
"""

from __future__ import annotations

from dataclasses import dataclass


class Persistence:
    """Counts consecutive samples for which a condition held."""

    def __init__(self, samples: int) -> None:
        if samples < 1:
            raise ValueError(f"persistence must be at least 1 sample, got {samples}")
        self.samples = samples
        self._count = 0
        self.first_t_us: int | None = None

    def update(self, condition: bool, t_us: int) -> bool:
        """Feed one sample; True once the condition has held for `samples` samples in a row."""
        if not condition:
            self._count = 0
            self.first_t_us = None
            return False
        if self._count == 0:
            self.first_t_us = t_us
        self._count += 1
        return self._count >= self.samples

    def clear(self) -> None:
        self._count = 0
        self.first_t_us = None


@dataclass
class LeakReference:
    """The resistance a steady irrigation settled at: the yardstick for a falling resistance.

    A perforation or a leak opens a second outflow, so at the same flow the pressure, and with it
    the resistance, falls below what this run had settled to.
    """

    settle_samples: int
    reference: float | None = None
    _total: float = 0.0
    _count: int = 0

    def update(self, resistance: float) -> float | None:
        if self.reference is None:
            self._total += resistance
            self._count += 1
            if self._count >= self.settle_samples:
                self.reference = self._total / self._count
        return self.reference

    def clear(self) -> None:
        self.reference = None
        self._total = 0.0
        self._count = 0
