"""Exponential back-off with jitter for reconnecting to a device that went away."""

from __future__ import annotations

import random


class Backoff:
    def __init__(
        self, initial_s: float = 0.05, maximum_s: float = 2.0, factor: float = 2.0
    ) -> None:
        if not 0 < initial_s <= maximum_s:
            raise ValueError(
                f"Backoff: need 0 < initial_s ({initial_s}) <= maximum_s ({maximum_s})"
            )
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.factor = factor
        self._next_s = initial_s

    def next_delay_s(self) -> float:
        """The next wait, with +-20 % jitter so that several devices do not retry in step."""
        delay = self._next_s
        self._next_s = min(self._next_s * self.factor, self.maximum_s)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._next_s = self.initial_s
