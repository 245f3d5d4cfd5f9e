"""Per-link statistics: what a bench engineer reads to tell a healthy cable from a failing one.

A rise in retransmissions or CRC errors is the early sign of a bad cable (Klipper's lesson), so
the counters are published with the fluid telemetry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class LinkStats:
    bytes_tx: int = 0
    bytes_rx: int = 0
    frames_tx: int = 0
    frames_rx: int = 0
    crc_errors: int = 0
    invalid_bytes: int = 0
    timeouts: int = 0
    retries: int = 0
    duplicates: int = 0
    """Frames dropped as already seen (a repeated or out-of-order sequence number)."""
    reconnects: int = 0
    connected: bool = False
    rtt_ms: float | None = None
    """Smoothed round-trip time (RFC 6298 style, alpha 1/8)."""
    rtt_var_ms: float | None = None

    def record_rtt(self, rtt_s: float) -> None:
        sample_ms = rtt_s * 1000.0
        if self.rtt_ms is None or self.rtt_var_ms is None:
            self.rtt_ms = sample_ms
            self.rtt_var_ms = sample_ms / 2.0
            return
        self.rtt_var_ms = 0.75 * self.rtt_var_ms + 0.25 * abs(self.rtt_ms - sample_ms)
        self.rtt_ms = 0.875 * self.rtt_ms + 0.125 * sample_ms

    def as_dict(self) -> dict[str, float | int | bool | None]:
        return asdict(self)
