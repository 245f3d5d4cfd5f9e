"""Run under the MicroPython unix port (tests/firmware/test_micropython_unix.py): the resistance
stop armed, 100 sample instants across the 2^30 tick wrap while the pressure climbs through the
limit, so that its lags, its test and its trip with the RESISTANCE_TRIP frame all run with the
heap locked. Any allocation raises MemoryError. Prints OK and the counts."""

import struct
import sys

sys.path.insert(0, ".")

import micropython

from firmware import protocol as p
from firmware.board import Board
from firmware.framing import build_frame
from firmware.hal import Hal


class H(Hal):
    def __init__(self) -> None:
        self.now = (1 << 30) - 100000
        self.n = 0
        self.cmmhg = 1700

    def ticks_us(self) -> int:
        return self.now

    def read_pressure_cmmhg(self, instant: int) -> int:
        self.cmmhg += 100  # 1 mmHg a sample: a wall at 1 mL/min, much faster than a real one
        return self.cmmhg

    def estop_input(self) -> bool:
        return False

    def take_estop_edge(self) -> bool:
        return False

    def set_relay(self, closed: bool) -> None:
        pass

    def set_light(self, permille: int) -> None:
        pass

    def write(self, frame: memoryview) -> None:
        self.n += 1


hal = H()
b = Board(hal, b"UNIX")
b.start(hal.now)
b.receive(build_frame(0, bytes((p.CONFIG_WATCHDOG, 0xD0, 0x07))))
b.receive(build_frame(1, bytes((p.SET_PUMP_RELAY, 1))))
flow = bytes((p.SET_FLOW,)) + struct.pack(p.HOST_ARGS[p.SET_FLOW], 1000, 6000, 300, 1059, 2)
b.receive(build_frame(2, flow))
b.poll(hal.now)
micropython.heap_lock()
try:
    for _ in range(200):
        hal.now = (hal.now + 1000) & ((1 << 30) - 1)
        b.poll(hal.now)
finally:
    micropython.heap_unlock()
print("OK", hal.n, b.sample_counter, b.trips, b.relay_closed)
