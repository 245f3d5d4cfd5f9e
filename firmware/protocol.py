"""The I/O board's message set as plain numbers: ids, argument layouts, ranges, codes.

docs/protocols/ioboard.md section 4. The one definition of the protocol's numbers: the firmware
uses them directly, the host's typed messages (drivers/ioboard/messages.py) are built on them.
Layouts are struct formats (strings: MicroPython has no struct.Struct).
"""

PROTOCOL_VERSION = 1
SERIAL_NUMBER_BYTES = 16

# host -> board
HEARTBEAT = 0x01
CONFIG_WATCHDOG = 0x02
SET_PUMP_RELAY = 0x03
SET_LIGHT = 0x04
SET_CUTOFF = 0x05
RESET_TRIP = 0x06
GET_STATUS = 0x07
IDENTIFY = 0x08
ZERO_PRESSURE = 0x09
SET_FLOW = 0x0A

# board -> host
PRESSURE_SAMPLE = 0x81
STATUS = 0x82
EVENT = 0x83
IDENT = 0x84
NACK = 0x85
RESISTANCE_TRIP = 0x86

HOST_ARGS = {
    HEARTBEAT: "<",
    CONFIG_WATCHDOG: "<H",
    SET_PUMP_RELAY: "<B",
    SET_LIGHT: "<H",
    SET_CUTOFF: "<H",
    RESET_TRIP: "<",
    GET_STATUS: "<",
    IDENTIFY: "<",
    ZERO_PRESSURE: "<",
    SET_FLOW: "<HHHHB",
}
"""Every host message but SET_FLOW has at most one argument."""

SAMPLE_ARGS = "<IHh"
STATUS_ARGS = "<IBBBHHHh"
EVENT_ARGS = "<IBh"
IDENT_ARGS = "<BBBB16s"
NACK_ARGS = "<BB"
RESISTANCE_TRIP_ARGS = "<IIHHh"

# trips (STATUS bitmask)
TRIP_WATCHDOG = 0x01
TRIP_CUTOFF = 0x02
TRIP_ESTOP = 0x04
TRIP_RESISTANCE = 0x08

# EVENT kinds
EVENT_ESTOP_PRESSED = 1
EVENT_ESTOP_RELEASED = 2
EVENT_WATCHDOG_TRIP = 3
EVENT_CUTOFF_TRIP = 4

# NACK reasons
NACK_UNKNOWN_MESSAGE = 1
NACK_MALFORMED = 2
NACK_OUT_OF_RANGE = 3
NACK_TRIP_LATCHED = 4
NACK_ESTOP_PRESSED = 5
NACK_WATCHDOG_NOT_ARMED = 6
NACK_RELAY_CLOSED = 7
NACK_SENSOR_FAULT = 8

PRESSURE_RAIL_HIGH_CMMHG = 0x7FFF
"""Reserved sample value: the transducer input sits at its positive rail (open bridge)."""
PRESSURE_RAIL_LOW_CMMHG = -0x8000
"""Reserved sample value: the transducer input sits at its negative rail (shorted bridge)."""
READING_MIN_CMMHG = -0x7FFF
READING_MAX_CMMHG = 0x7FFE
"""Real readings stay clear of the two rail codes."""

WATCHDOG_MIN_MS = 20
WATCHDOG_MAX_MS = 2000
LIGHT_MAX_PERMILLE = 1000

# SET_FLOW (section 5.9): flow in uL/min, limit in 0.01 mmHg*min/mL, lags in ms
FLOW_MAX_UL_MIN = 10000
RESISTANCE_LIMIT_MIN_CR = 100
LAG_MIN_MS = 50
"""The board's lag arithmetic stays within 31-bit small integers for time constants of 50 ms
and more (firmware/board.py, `_LAG_SHIFT`)."""
LAG_MAX_MS = 60000
PERSISTENCE_MAX_SAMPLES = 50


def check_host_arg(msg_id: int, value: int) -> int:
    """The range checks that need no board state (section 4.1): a NACK reason, or 0."""
    if msg_id == CONFIG_WATCHDOG and not WATCHDOG_MIN_MS <= value <= WATCHDOG_MAX_MS:
        return NACK_OUT_OF_RANGE
    if msg_id == SET_PUMP_RELAY and value > 1:
        return NACK_OUT_OF_RANGE
    if msg_id == SET_LIGHT and value > LIGHT_MAX_PERMILLE:
        return NACK_OUT_OF_RANGE
    if msg_id == SET_CUTOFF and value == 0:
        return NACK_OUT_OF_RANGE
    return 0


def check_set_flow(
    flow_ul_min: int, limit_cr: int, lag_short_ms: int, lag_long_ms: int, persistence: int
) -> int:
    """SET_FLOW's ranges (section 4.1): a NACK reason, or 0."""
    if flow_ul_min > FLOW_MAX_UL_MIN or limit_cr < RESISTANCE_LIMIT_MIN_CR:
        return NACK_OUT_OF_RANGE
    if not LAG_MIN_MS <= lag_short_ms <= lag_long_ms <= LAG_MAX_MS:
        return NACK_OUT_OF_RANGE
    if not 1 <= persistence <= PERSISTENCE_MAX_SAMPLES:
        return NACK_OUT_OF_RANGE
    return 0
