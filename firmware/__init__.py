"""The I/O board's firmware (MicroPython on an RP2040; docs/firmware.md).

Every module but `hal_rp2040` (and `hal_unix`) is pure logic that runs unchanged under CPython,
for the tests and the simulator, and under MicroPython on the board. Only the MicroPython subset
of the language is used: no dataclasses, enums or `typing` at run time, no `__future__` imports,
annotations only where MicroPython ignores them. `tests/firmware/test_mpy_cross.py` compiles every
file with mpy-cross to keep it that way.
"""
