"""Run under the MicroPython unix port (tests/firmware/test_micropython_unix.py): the firmware's
main loop on `firmware.hal_unix`, speaking the board protocol on stdin and stdout."""

import sys

sys.path.insert(0, ".")

from firmware.hal_unix import main

main()
