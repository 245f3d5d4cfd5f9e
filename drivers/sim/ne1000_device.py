"""The NE-1000 syringe pump's brain for the emulator: pure state, no I/O, no asyncio.

The emulator feeds it the host's bytes (`receive`) and steps it with the world (`advance`); the
world reads `flow_ml_min`. It speaks through `Ne1000DeviceCodec`, the same codec the driver's
tests pin byte for byte.

Behaviour the model chooses where the manual is silent or our sources disagree (each is a
guess about the real pump, to be checked against one on the bench):

- An alarm replaces the reply: while an alarm is active, every framed command gets ``A?<letter>``
  and is NOT acted on. The first valid command answered with the alarm clears it (the host
  learns of it exactly once, and must resend the command). Packets rejected with ``COM`` do not
  clear it; they too are answered with the alarm.
- Power-up: the first complete command after `power_on` is swallowed (no reply, no action), then
  alarm ``R`` is pending, so the second command is answered ``A?R``.
- Safe mode: the reply to ``SAF n`` is framed in the mode the command arrived in; the new mode
  applies from the next command. A safe-mode packet with a bad CRC is answered ``?COM`` (framed)
  and does not feed the watchdog. Bytes outside a packet (e.g. basic-mode commands) are ignored
  without reply. On the timeout the pump stops, raises alarm ``T`` and stays in safe mode. It
  fires whether or not the motor runs, once per silence.
- ``STP`` stops at once with prompt ``S`` (a real pump first pauses, prompt ``P``; not modelled).
- ``RAT`` is accepted while running and takes effect at once. The NE-500/NE-1000-series manual
  (publication 1200-02, firmware V3.919, section 5.4.1) says so for simple programs, and that the
  rate's units cannot change while pumping (not modelled: the driver always sends mL/min).
  ``DIA`` while running is ``NA``. ``DIR`` is accepted while running; the same section allows it
  only with a target volume of 0 (not modelled: the driver changes direction stopped).
- ``DIA`` picks the volume units as that manual's quick start gives them: up to 14.00 mm uL,
  above it mL. ``VOL UL|ML`` overrides them.
- The target volume (``VOL`` > 0) counts from each ``RUN``.
- Rate limits come from a plunger speed range (`MIN_PLUNGER_MM_MIN`..`MAX_PLUNGER_MM_MIN`), a
  model assumption; ``OOR`` outside it. Diameter range 0.1..50.0 mm.
- Stall: infusing against a line pressure above `stall_pressure_mmhg`, or withdrawing against a
  vacuum below its negative, stops the motor with alarm ``S``.
- A new model is a pump that has been on for a while: powered, basic mode, no alarm, clock at
  0 until `power_on`, `receive` or `advance` moves it. To simulate a cold boot, `power_off()`
  then `power_on(now_s)`.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum

from drivers.ne1000.codec import (
    RATE_UNIT_PER_ML_MIN,
    VOLUME_UNIT_PER_ML,
    AlarmKind,
    AlarmReply,
    DataReply,
    Direction,
    DispensedReply,
    ErrorReply,
    Ne1000DeviceCodec,
    ParsedCommand,
    Prompt,
    PumpStatus,
    RateUnits,
    Reply,
    VersionReply,
    VolumeUnits,
    format_number,
    parse_number,
)

VERSION_TEXT = "NE1000V3.928"
MIN_DIAMETER_MM = 0.1
MAX_DIAMETER_MM = 50.0
UL_UNITS_MAX_DIAMETER_MM = 14.0
MIN_PLUNGER_MM_MIN = 0.001
MAX_PLUNGER_MM_MIN = 60.0

_RATE_RE = re.compile(r"C?([0-9.]+)(UM|MM|UH|MH)?")


_Answer = Reply | str | None
"""What a command handler returns: a reply, data for a `DataReply`, or None for the prompt."""


class _Refused(Exception):
    """A command the pump answers with an error code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Ne1000Device:
    def __init__(
        self,
        address: int = 0,
        syringe_diameter_mm: float = 14.57,
        stall_pressure_mmhg: float = 300.0,
    ) -> None:
        self.address = address
        self.stall_pressure_mmhg = stall_pressure_mmhg
        self._codec = Ne1000DeviceCodec(address)
        self._now_s = 0.0
        self._powered = True
        self._swallow_next = False
        self._alarm: AlarmKind | None = None
        self._running = False
        self._direction = Direction.INFUSE
        self._diameter_mm = syringe_diameter_mm
        self._volume_units = self._units_for(syringe_diameter_mm)
        self._rate_ml_min = 1.0
        self._rate_units = RateUnits.ML_MIN
        self._target_volume_ml = 0.0
        self._run_volume_ml = 0.0
        self._infused_ml = 0.0
        self._withdrawn_ml = 0.0
        self._safe_timeout_s = 0
        self._last_valid_packet_s = 0.0
        self._watchdog_fired = False
        self._last_stop_reason = ""
        self._next_safe_mode: bool | None = None
        self.ignores_stop = False
        """Fault injection: STP is acknowledged but the motor keeps running (a runaway pump)."""
        self.own_power_supply = False
        """A pump on its own mains supply (a bench pump not wired through the board's relay):
        opening the relay does not power it off, so it keeps its alarms and its safe mode."""
        self.reply_faults: dict[str, ReplyFault] = {}
        """Fault injection: the next reply to a command (by `command_key`) is damaged, once."""

    # --- read-only state ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def direction(self) -> Direction:
        return self._direction

    @property
    def rate_ml_min(self) -> float:
        return self._rate_ml_min

    @property
    def diameter_mm(self) -> float:
        return self._diameter_mm

    @property
    def target_volume_ml(self) -> float:
        """0 when no target volume is set."""
        return self._target_volume_ml

    @property
    def infused_ml(self) -> float:
        return self._infused_ml

    @property
    def withdrawn_ml(self) -> float:
        return self._withdrawn_ml

    @property
    def safe_mode_timeout_s(self) -> int:
        """0 in basic mode."""
        return self._safe_timeout_s

    @property
    def safe_mode(self) -> bool:
        return self._codec.safe_mode

    @property
    def alarm(self) -> AlarmKind | None:
        return self._alarm

    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def last_stop_reason(self) -> str:
        """ "command", "volume", "stall", "safe_mode_timeout", "power", or "" if never stopped."""
        return self._last_stop_reason

    @property
    def now_s(self) -> float:
        return self._now_s

    @property
    def flow_ml_min(self) -> float:
        """Signed flow into the line: + infusing, - withdrawing."""
        if not (self._running and self._powered):
            return 0.0
        return self._rate_ml_min if self._direction is Direction.INFUSE else -self._rate_ml_min

    @property
    def status(self) -> PumpStatus:
        if not self._running:
            return PumpStatus.STOPPED
        if self._direction is Direction.INFUSE:
            return PumpStatus.INFUSING
        return PumpStatus.WITHDRAWING

    # --- power -------------------------------------------------------------------------------

    def power_off(self) -> None:
        if self.own_power_supply:
            return
        if self._running:
            self._stop("power")
        self._powered = False
        self._safe_timeout_s = 0
        self._codec = Ne1000DeviceCodec(self.address)

    def power_on(self, now_s: float) -> None:
        """Close the power relay: a cold boot (quirk, alarm R) unless the pump already has power.

        On a pump that is already powered this only brings its clock up to `now_s`.
        """
        self._now_s = max(self._now_s, now_s)
        if self._powered:
            return
        self._powered = True
        self._swallow_next = True
        self._alarm = AlarmKind.RESET
        self._watchdog_fired = False

    # --- time --------------------------------------------------------------------------------

    def advance(self, dt_s: float, line_pressure_mmhg: float) -> None:
        """Move the plunger for `dt_s` against `line_pressure_mmhg`; check stall and watchdog."""
        if dt_s < 0:
            raise ValueError(f"advance(dt_s={dt_s}): time cannot run backwards")
        end_s = self._now_s + dt_s
        deadline_s = self._watchdog_deadline_s()
        if deadline_s is not None and deadline_s <= end_s:
            self._move(max(0.0, deadline_s - self._now_s), line_pressure_mmhg)
            self._fire_watchdog()
        else:
            self._move(dt_s, line_pressure_mmhg)
        self._now_s = end_s

    def _move(self, dt_s: float, line_pressure_mmhg: float) -> None:
        if not (self._running and self._powered):
            return
        against_mmhg = (
            line_pressure_mmhg if self._direction is Direction.INFUSE else -line_pressure_mmhg
        )
        if against_mmhg > self.stall_pressure_mmhg:
            self._stop("stall")
            self._alarm = AlarmKind.STALLED
            return
        volume_ml = self._rate_ml_min * dt_s / 60.0
        if self._target_volume_ml > 0:
            remaining_ml = self._target_volume_ml - self._run_volume_ml
            if volume_ml >= remaining_ml:
                volume_ml = max(0.0, remaining_ml)
                self._stop("volume")
        self._run_volume_ml += volume_ml
        if self._direction is Direction.INFUSE:
            self._infused_ml += volume_ml
        else:
            self._withdrawn_ml += volume_ml

    def _watchdog_deadline_s(self) -> float | None:
        if not self._powered or self._safe_timeout_s == 0 or self._watchdog_fired:
            return None
        return self._last_valid_packet_s + self._safe_timeout_s

    def _fire_watchdog(self) -> None:
        self._watchdog_fired = True
        if self._running:
            self._stop("safe_mode_timeout")
        self._alarm = AlarmKind.SAFE_MODE_TIMEOUT

    def _stop(self, reason: str) -> None:
        self._running = False
        self._last_stop_reason = reason

    # --- commands ----------------------------------------------------------------------------

    def receive(self, data: bytes, now_s: float) -> bytes:
        """Take the host's bytes at `now_s`; return the pump's reply bytes (maybe none)."""
        if not self._powered:
            return b""
        if now_s > self._now_s:
            # Time passes without motion here; the world integrates motion with `advance`.
            deadline_s = self._watchdog_deadline_s()
            if deadline_s is not None and deadline_s <= now_s:
                self._fire_watchdog()
            self._now_s = now_s
        self._codec.feed(data)
        out = bytearray()
        for command in self._codec.commands():
            fault = self._take_reply_fault(command)
            if fault is ReplyFault.ERROR or fault is ReplyFault.ALARM:
                reply: Reply | None = self._refuse(command, fault)
            else:
                reply = self._handle(command)
            if reply is not None:
                encoded = self._codec.encode_reply(reply)
                out += encoded if fault is None else _damage(encoded, fault, self.safe_mode)
            if self._next_safe_mode is not None:
                self._codec.safe_mode = self._next_safe_mode
                self._next_safe_mode = None
        return bytes(out)

    def _take_reply_fault(self, command: ParsedCommand) -> ReplyFault | None:
        if self._swallow_next or command.error is not None:
            return None
        return self.reply_faults.pop(command_key(command.mnemonic, command.args), None)

    def _refuse(self, command: ParsedCommand, fault: ReplyFault) -> Reply:
        """An injected refusal: the command is not acted on. An alarm is a stall: the motor
        stops, and the alarm is reported in this reply (so it is cleared)."""
        if command.error is None and self._codec.safe_mode:
            self._last_valid_packet_s = self._now_s
            self._watchdog_fired = False
        if fault is ReplyFault.ALARM:
            if self._running:
                self._stop("stall")
            return AlarmReply(self.address, AlarmKind.STALLED)
        return ErrorReply(self.address, self.status, "NA")

    def _handle(self, command: ParsedCommand) -> Reply | None:
        if self._swallow_next:
            self._swallow_next = False
            return None
        if command.address is not None and command.address != self.address:
            return None
        if command.error is None and self._codec.safe_mode:
            self._last_valid_packet_s = self._now_s
            self._watchdog_fired = False
        if self._alarm is not None:
            alarm = self._alarm
            if command.error is None:
                self._alarm = None
            return AlarmReply(self.address, alarm)
        if command.error is not None:
            return ErrorReply(self.address, self.status, "COM")
        try:
            return self._execute(command.mnemonic, command.args)
        except _Refused as refused:
            return ErrorReply(self.address, self.status, refused.code)

    def _execute(self, mnemonic: str, args: str) -> Reply:
        handler = _HANDLERS.get(mnemonic)
        if handler is None:
            raise _Refused("?")
        answer = handler(self, args)
        if answer is None:
            return Prompt(self.address, self.status)
        if isinstance(answer, str):
            return DataReply(self.address, self.status, answer)
        return answer

    def _cmd_query(self, args: str) -> _Answer:
        if args:
            raise _Refused("?")
        return None

    def _cmd_version(self, args: str) -> _Answer:
        return VersionReply(self.address, self.status, VERSION_TEXT)

    def _cmd_dispensed(self, args: str) -> _Answer:
        return DispensedReply(
            self.address, self.status, self._infused_ml, self._withdrawn_ml, self._volume_units
        )

    def _cmd_diameter(self, args: str) -> _Answer:
        if not args:
            return format_number(self._diameter_mm)
        mm = _number(args)
        if not MIN_DIAMETER_MM <= mm <= MAX_DIAMETER_MM:
            raise _Refused("OOR")
        if self._running:
            raise _Refused("NA")
        self._diameter_mm = mm
        self._volume_units = self._units_for(mm)
        return None

    def _cmd_rate(self, args: str) -> _Answer:
        if not args:
            value = self._rate_ml_min * RATE_UNIT_PER_ML_MIN[self._rate_units]
            return _printable_number(value) + self._rate_units.value
        match = _RATE_RE.fullmatch(args)
        if match is None:
            raise _Refused("?")
        units = RateUnits(match.group(2)) if match.group(2) else self._rate_units
        ml_min = _number(match.group(1)) / RATE_UNIT_PER_ML_MIN[units]
        area_mm2 = math.pi * (self._diameter_mm / 2) ** 2
        min_ml_min = area_mm2 * MIN_PLUNGER_MM_MIN / 1000.0
        max_ml_min = area_mm2 * MAX_PLUNGER_MM_MIN / 1000.0
        if not min_ml_min <= ml_min <= max_ml_min:
            raise _Refused("OOR")
        self._rate_ml_min, self._rate_units = ml_min, units
        return None

    def _cmd_direction(self, args: str) -> _Answer:
        if not args:
            return self._direction.value
        try:
            direction = Direction(args)
        except ValueError:
            raise _Refused("?") from None
        if direction is Direction.REVERSE:
            direction = (
                Direction.WITHDRAW if self._direction is Direction.INFUSE else Direction.INFUSE
            )
        self._direction = direction
        return None

    def _cmd_volume(self, args: str) -> _Answer:
        if not args:
            value = self._target_volume_ml * VOLUME_UNIT_PER_ML[self._volume_units]
            return _printable_number(value) + self._volume_units.value
        if args in ("UL", "ML"):
            self._volume_units = VolumeUnits(args)
            return None
        value = _number(args)
        self._target_volume_ml = value / VOLUME_UNIT_PER_ML[self._volume_units]
        return None

    def _cmd_run(self, args: str) -> _Answer:
        if args:
            raise _Refused("?")
        if not self._running:
            self._running = True
            self._run_volume_ml = 0.0
        return None

    def _cmd_stop(self, args: str) -> _Answer:
        if args:
            raise _Refused("?")
        if self._running and not self.ignores_stop:
            self._stop("command")
        return None

    def _cmd_clear(self, args: str) -> _Answer:
        if args == "INF":
            self._infused_ml = 0.0
        elif args == "WDR":
            self._withdrawn_ml = 0.0
        else:
            raise _Refused("?")
        return None

    def _cmd_safe(self, args: str) -> _Answer:
        if not args:
            return str(self._safe_timeout_s)
        if not re.fullmatch(r"[0-9]+", args):
            raise _Refused("?")
        timeout_s = int(args)
        if timeout_s > 255:
            raise _Refused("OOR")
        self._safe_timeout_s = timeout_s
        self._last_valid_packet_s = self._now_s
        self._watchdog_fired = False
        self._next_safe_mode = timeout_s > 0
        return None

    @staticmethod
    def _units_for(diameter_mm: float) -> VolumeUnits:
        return VolumeUnits.UL if diameter_mm <= UL_UNITS_MAX_DIAMETER_MM else VolumeUnits.ML


class ReplyFault(StrEnum):
    """How an injected fault damages one reply."""

    CORRUPT = "corrupt"
    """The command is acted on; its reply is damaged on the wire (safe mode: a bad CRC; basic
    mode: an unknown prompt character)."""
    GARBLE = "garble"
    """The command is acted on; its reply is replaced by line noise with no frame in it."""
    ERROR = "error"
    """The command is refused with ``?NA`` and not acted on."""
    ALARM = "alarm"
    """The pump stalls: the command is answered with alarm S and not acted on."""


COMMAND_KEYS = (
    "QUERY", "VER", "DIS", "DIA", "RAT", "DIR", "VOLUNITS", "VOL", "RUN", "STP", "CLD", "SAF",
)  # fmt: skip
"""The names `reply_faults` knows: the mnemonics, with QUERY for the bare query and VOLUNITS for
``VOL UL|ML`` (which the driver sends before each ``VOL n``)."""

NOISE = b"\x7f\x00~#\xfe"


def command_key(mnemonic: str, args: str) -> str:
    if mnemonic == "":
        return "QUERY"
    if mnemonic == "VOL" and args in ("UL", "ML"):
        return "VOLUNITS"
    return mnemonic


def _damage(encoded: bytes, fault: ReplyFault, safe_mode: bool) -> bytes:
    if fault is ReplyFault.GARBLE:
        return NOISE
    if fault is ReplyFault.CORRUPT:
        if safe_mode:
            return encoded[:-3] + bytes([encoded[-3] ^ 0x5A]) + encoded[-2:]
        return encoded[:3] + b"#" + encoded[4:]  # STX, 2-digit address, then the prompt
    return encoded


def _number(text: str) -> float:
    try:
        return parse_number(text)
    except ValueError:
        raise _Refused("?") from None


def _printable_number(value: float) -> str:
    try:
        return format_number(value)
    except ValueError:
        return f"{value:.0f}"


_HANDLERS = {
    "": Ne1000Device._cmd_query,
    "VER": Ne1000Device._cmd_version,
    "DIS": Ne1000Device._cmd_dispensed,
    "DIA": Ne1000Device._cmd_diameter,
    "RAT": Ne1000Device._cmd_rate,
    "DIR": Ne1000Device._cmd_direction,
    "VOL": Ne1000Device._cmd_volume,
    "RUN": Ne1000Device._cmd_run,
    "STP": Ne1000Device._cmd_stop,
    "CLD": Ne1000Device._cmd_clear,
    "SAF": Ne1000Device._cmd_safe,
}
