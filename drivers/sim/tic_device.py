"""The Pololu Tic's brain for the emulator, with the basket's stage behind it: pure state, no I/O.

The USB face (`drivers/sim/usb/tic.py`) and a serial face feed it decoded requests (`handle`)
and step it to the current time (`advance`); it answers block reads with the bytes of its
variable and setting images, laid out by the same codec the driver reads them with.

The motor: a trapezoidal planner in the Tic's units (max speed, max accel, max decel), stepped
every `STEP_S`. The stage: the microsteps the motor makes move the basket wire, counted by an
encoder (`encoder_position`, one count per microstep), until the basket closes on something
(`obstacle_usteps`, or the end of travel): there the stepper stalls, the Tic's position counter
runs on and the encoder does not, so the host sees a position error. A reverse limit switch at
physical 0 serves homing. The encoder is absolute (counts from the switch) or, as the Tic's own
encoder input, incremental (counts from where the stage stood at power-up).

Behaviour the model chooses where the user's guide is silent (to be checked on a real Tic):

- Errors: with any error bit set the motor follows the soft-error response (default: decelerate
  to hold at max decel) and set-target commands are ignored. In "Serial / I2C / USB" mode any
  other error also raises "safe start violation", which only "exit safe start" clears, so after
  a command timeout the host must exit safe start again before anything moves.
- The command timeout counts from the last of the commands that reset it (codec
  `COMMAND_TIMEOUT_RESETTERS`) and from power-up.
- Position uncertain: set at power-up, by halt-and-hold, by de-energizing, by a soft error with
  the halt-and-hold or de-energize response; cleared by halt-and-set-position and by homing.
  A stall does not set it (the Tic cannot know).
- Homing (go home reverse): towards the switch at the homing speed towards, away from it at the
  homing speed away until it releases, then position 0. Going home forward is ignored (no
  forward switch is fitted).
- Reinitialize applies the settings image (set-setting writes wait for it); reset does too, and
  halts, sets position uncertain and clears the timeout and serial errors.
- Starting speed is not modelled (motion starts from 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivers.tic.codec import (
    ACCEL_UNITS_PER_HZ2,
    COMMAND_TIMEOUT_RESETTERS,
    DEFAULT_COMMAND_TIMEOUT_MS,
    SETTINGS_SIZE,
    SPEED_UNITS_PER_HZ,
    VARIABLES_SIZE,
    BlockRead,
    Command,
    HomeDirection,
    MiscFlags,
    OperationState,
    PlanningMode,
    Request,
    SetSetting,
    Setting,
    SoftErrorResponse,
    StepMode,
    TicCommand,
    TicErrors,
    Var,
)

STEP_S = 0.001
VIN_MV = 12_000
CLEARED_BY_RESETTERS = TicErrors.COMMAND_TIMEOUT | TicErrors.SERIAL_ERROR
ERROR_STATUS_MASK = 0x01FF
REVERSE_LIMIT_PIN_MAP = 1 << 3  # the RX pin, an arbitrary choice: any non-zero map is "fitted"


@dataclass(frozen=True)
class StageSettings:
    """The basket's stage behind the motor, in microsteps from the reverse limit switch."""

    start_usteps: float = 1000.0
    travel_usteps: float = 40_000.0
    """The far end of travel: the stepper stalls against it."""
    obstacle_usteps: float | None = None
    """Something the basket closes on (a lesion, the wall): moving forward stalls there."""
    hard_stop_reverse_usteps: float = -400.0
    encoder_absolute: bool = True
    """True: the encoder counts from the switch (absolute); False: from where the stage stood
    when the Tic powered up, as the Tic's own (incremental) encoder input does."""


@dataclass(frozen=True)
class TicDefaults:
    """The settings image a new (or reset-to-defaults) Tic has; libpololu's defaults."""

    command_timeout_ms: int = DEFAULT_COMMAND_TIMEOUT_MS
    max_speed_usteps_per_10ks: int = 2_000_000
    max_accel_usteps_per_100s2: int = 40_000
    max_decel_usteps_per_100s2: int = 0  # 0: same as max accel
    current_limit_code: int = 6  # 192 mA on a T825
    step_mode: StepMode = StepMode.FULL
    soft_error_response: SoftErrorResponse = SoftErrorResponse.DECEL_TO_HOLD
    homing_speed_towards_usteps_per_10ks: int = 1_000_000
    homing_speed_away_usteps_per_10ks: int = 500_000


class TicModel:
    def __init__(
        self,
        stage: StageSettings | None = None,
        defaults: TicDefaults | None = None,
    ) -> None:
        self.stage = stage if stage is not None else StageSettings()
        self.settings = bytearray(SETTINGS_SIZE)
        self._write_defaults(defaults if defaults is not None else TicDefaults())
        self.physical_usteps = self.stage.start_usteps
        self.encoder_zero_usteps = 0.0
        self.lost_usteps = 0.0
        self.powered = False
        self.requests_handled = 0
        self.ignored_targets = 0
        self._now_s = 0.0
        self._reset_state(0.0)

    # --- power --------------------------------------------------------------------------------

    def power_up(self, now_s: float) -> None:
        self.powered = True
        self._now_s = now_s
        self._reset_state(now_s)

    def power_down(self, now_s: float) -> None:
        """The motor stops being driven: it stops where it is (the stage has no momentum)."""
        self.advance(now_s)
        self.powered = False
        self.velocity_usteps_s = 0.0

    def _reset_state(self, now_s: float) -> None:
        self.position_usteps = 0.0
        self.velocity_usteps_s = 0.0
        self.planning = PlanningMode.OFF
        self.target_position_usteps = 0
        self.target_velocity_usteps_per_10ks = 0
        self.errors = TicErrors.SAFE_START_VIOLATION
        self.errors_occurred = TicErrors.SAFE_START_VIOLATION
        self.position_uncertain = True
        self.homing: str | None = None
        self._arrived = False
        self.up_since_s = now_s
        self.last_resetter_s = now_s
        self.encoder_zero_usteps = 0.0 if self.stage.encoder_absolute else self.physical_usteps
        self._apply_settings()

    # --- settings ------------------------------------------------------------------------------

    def _write_defaults(self, d: TicDefaults) -> None:
        Setting.CONTROL_MODE.pack_into(self.settings, 0)
        Setting.COMMAND_TIMEOUT.pack_into(self.settings, d.command_timeout_ms)
        Setting.MAX_SPEED.pack_into(self.settings, d.max_speed_usteps_per_10ks)
        Setting.MAX_ACCEL.pack_into(self.settings, d.max_accel_usteps_per_100s2)
        Setting.MAX_DECEL.pack_into(self.settings, d.max_decel_usteps_per_100s2)
        Setting.CURRENT_LIMIT.pack_into(self.settings, d.current_limit_code)
        Setting.STEP_MODE.pack_into(self.settings, d.step_mode)
        Setting.SOFT_ERROR_RESPONSE.pack_into(self.settings, d.soft_error_response)
        Setting.HOMING_SPEED_TOWARDS.pack_into(
            self.settings, d.homing_speed_towards_usteps_per_10ks
        )
        Setting.HOMING_SPEED_AWAY.pack_into(self.settings, d.homing_speed_away_usteps_per_10ks)
        Setting.LIMIT_SWITCH_REVERSE_MAP.pack_into(self.settings, REVERSE_LIMIT_PIN_MAP)

    def _apply_settings(self) -> None:
        s = bytes(self.settings)
        self.command_timeout_ms = Setting.COMMAND_TIMEOUT.unpack(s)
        self.max_speed = Setting.MAX_SPEED.unpack(s)
        self.max_accel = Setting.MAX_ACCEL.unpack(s)
        self.max_decel = Setting.MAX_DECEL.unpack(s)
        self.current_limit_code = Setting.CURRENT_LIMIT.unpack(s)
        self.step_mode = Setting.STEP_MODE.unpack(s)
        self.soft_error_response = SoftErrorResponse(Setting.SOFT_ERROR_RESPONSE.unpack(s))
        self.safe_start_enabled = Setting.DISABLE_SAFE_START.unpack(s) == 0

    # --- requests ------------------------------------------------------------------------------

    def handle(self, request: Request, now_s: float) -> bytes:
        """Act on one request at `now_s`; the reply of a block read, else b""."""
        self.advance(now_s)
        self.requests_handled += 1
        if isinstance(request, BlockRead):
            return self._read(request)
        if isinstance(request, SetSetting):
            self.settings[request.offset] = request.value
            return b""
        self._command(request, now_s)
        return b""

    def _read(self, read: BlockRead) -> bytes:
        if read.command is TicCommand.GET_SETTING:
            image = bytes(self.settings)
        else:
            image = self.variables()
            if read.command is TicCommand.GET_VARIABLE_AND_CLEAR_ERRORS_OCCURRED:
                self.errors_occurred = TicErrors(0)
        block = image[read.offset : read.offset + read.length]
        return block + bytes(read.length - len(block))

    def _command(self, cmd: Command, now_s: float) -> None:
        code = cmd.command
        if code in COMMAND_TIMEOUT_RESETTERS:
            self.last_resetter_s = now_s
            self.errors &= ~CLEARED_BY_RESETTERS
        if code is TicCommand.SET_TARGET_POSITION:
            self._set_target(PlanningMode.TARGET_POSITION, cmd.value)
        elif code is TicCommand.SET_TARGET_VELOCITY:
            self._set_target(PlanningMode.TARGET_VELOCITY, cmd.value)
        elif code is TicCommand.HALT_AND_SET_POSITION:
            self._halt()
            self.position_usteps = float(cmd.value)
            self.position_uncertain = False
        elif code is TicCommand.HALT_AND_HOLD:
            self._halt()
            self.position_uncertain = True
        elif code is TicCommand.GO_HOME:
            if not self._blocking_errors() and cmd.value == HomeDirection.REVERSE:
                self.homing = "towards"
                self.planning = PlanningMode.OFF
        elif code is TicCommand.ENERGIZE:
            self.errors &= ~TicErrors.INTENTIONALLY_DEENERGIZED
        elif code is TicCommand.DEENERGIZE:
            self._raise(TicErrors.INTENTIONALLY_DEENERGIZED)
            self._halt()
            self.position_uncertain = True
        elif code is TicCommand.EXIT_SAFE_START:
            self.errors &= ~TicErrors.SAFE_START_VIOLATION
        elif code is TicCommand.ENTER_SAFE_START:
            self._raise(TicErrors.SAFE_START_VIOLATION)
        elif code in (TicCommand.RESET, TicCommand.REINITIALIZE):
            self._apply_settings()
            if code is TicCommand.RESET:
                self._halt()
                self.position_uncertain = True
                self._raise(TicErrors.SAFE_START_VIOLATION)
        elif code is TicCommand.SET_MAX_SPEED:
            self.max_speed = cmd.value
        elif code is TicCommand.SET_MAX_ACCEL:
            self.max_accel = cmd.value
        elif code is TicCommand.SET_MAX_DECEL:
            self.max_decel = cmd.value
        elif code is TicCommand.SET_CURRENT_LIMIT:
            self.current_limit_code = cmd.value
        elif code is TicCommand.SET_STEP_MODE:
            self.step_mode = cmd.value
        elif code is TicCommand.CLEAR_DRIVER_ERROR:
            self.errors &= ~TicErrors.MOTOR_DRIVER_ERROR
        # RESET_COMMAND_TIMEOUT: only its effect above; starting speed, decay mode and AGC: not
        # modelled

    def _set_target(self, mode: PlanningMode, value: int) -> None:
        if self._blocking_errors():
            self.ignored_targets += 1
            return
        self.homing = None
        self.planning = mode
        if mode is PlanningMode.TARGET_POSITION:
            self.target_position_usteps = value
        else:
            self.target_velocity_usteps_per_10ks = value

    def _halt(self) -> None:
        self.velocity_usteps_s = 0.0
        self.planning = PlanningMode.OFF
        self.homing = None

    def _raise(self, bits: TicErrors) -> None:
        self.errors |= bits
        self.errors_occurred |= bits

    def _blocking_errors(self) -> bool:
        return bool(self.errors)

    def inject_error(self, bits: TicErrors) -> None:
        """A fault of the hardware (motor driver error, low VIN) for scenarios."""
        self._raise(bits)

    # --- time ----------------------------------------------------------------------------------

    def advance(self, now_s: float) -> None:
        if not self.powered:
            self._now_s = max(self._now_s, now_s)
            return
        while self._now_s + STEP_S <= now_s:
            self._now_s += STEP_S
            self._step(self._now_s)

    def _step(self, t_s: float) -> None:
        timeout_s = self.command_timeout_ms / 1000.0
        if (
            timeout_s > 0
            and t_s - self.last_resetter_s > timeout_s
            and TicErrors.COMMAND_TIMEOUT not in self.errors
        ):
            self._raise(TicErrors.COMMAND_TIMEOUT)
        if self.safe_start_enabled and self.errors & ~TicErrors.SAFE_START_VIOLATION:
            self._raise(TicErrors.SAFE_START_VIOLATION)
        if self.errors:
            self._soft_error()
        elif self.homing is not None:
            self._home()
        elif self.planning is PlanningMode.TARGET_POSITION:
            self._to_position(
                float(self.target_position_usteps), self.max_speed / SPEED_UNITS_PER_HZ
            )
        elif self.planning is PlanningMode.TARGET_VELOCITY:
            self._to_velocity(self.target_velocity_usteps_per_10ks / SPEED_UNITS_PER_HZ)
        else:
            self._to_velocity(0.0)
        if not self._arrived:
            self._move(self.velocity_usteps_s * STEP_S)
        self._arrived = False

    def _soft_error(self) -> None:
        self.planning = PlanningMode.OFF
        self.homing = None
        response = self.soft_error_response
        abrupt = (SoftErrorResponse.DEENERGIZE, SoftErrorResponse.HALT_AND_HOLD)
        if response in abrupt or not self.energized:
            if self.velocity_usteps_s:
                self.position_uncertain = True
            self.velocity_usteps_s = 0.0
        elif response is SoftErrorResponse.GO_TO_POSITION:
            position = Setting.SOFT_ERROR_POSITION.unpack(bytes(self.settings))
            self._to_position(float(position), self.max_speed / SPEED_UNITS_PER_HZ)
        else:
            self._to_velocity(0.0)

    def _home(self) -> None:
        on_switch = self.physical_usteps <= 0.0
        if self.homing == "towards":
            if on_switch:
                self.velocity_usteps_s = 0.0
                self.homing = "away"
            else:
                speed = Setting.HOMING_SPEED_TOWARDS.unpack(bytes(self.settings))
                self._to_velocity(-speed / SPEED_UNITS_PER_HZ)
        elif on_switch:
            speed = Setting.HOMING_SPEED_AWAY.unpack(bytes(self.settings))
            self._to_velocity(speed / SPEED_UNITS_PER_HZ)
        else:
            self.velocity_usteps_s = 0.0
            self.position_usteps = 0.0
            self.position_uncertain = False
            self.homing = None

    def _accel(self) -> float:
        return self.max_accel / ACCEL_UNITS_PER_HZ2

    def _decel(self) -> float:
        return (self.max_decel or self.max_accel) / ACCEL_UNITS_PER_HZ2

    def _to_velocity(self, target_usteps_s: float) -> None:
        v = self.velocity_usteps_s
        speeding_up = abs(target_usteps_s) > abs(v) and (
            v == 0 or math.copysign(1, v) == math.copysign(1, target_usteps_s)
        )
        rate = (self._accel() if speeding_up else self._decel()) * STEP_S
        if abs(target_usteps_s - v) <= rate:
            self.velocity_usteps_s = target_usteps_s
        else:
            self.velocity_usteps_s = v + math.copysign(rate, target_usteps_s - v)

    def _to_position(self, target: float, max_speed_usteps_s: float) -> None:
        remaining = target - self.position_usteps
        v = self.velocity_usteps_s
        decel = self._decel()
        if abs(remaining) < 0.5 and abs(v) <= decel * STEP_S:
            self._arrive(remaining)
            return
        stopping = v * v / (2 * decel)
        heading_there = v == 0 or math.copysign(1, v) == math.copysign(1, remaining)
        if heading_there and abs(remaining) > stopping:
            self._to_velocity(math.copysign(max_speed_usteps_s, remaining))
        else:
            self._to_velocity(0.0)
            if heading_there and abs(self.velocity_usteps_s * STEP_S) >= abs(remaining):
                self._arrive(remaining)  # within this step

    def _arrive(self, remaining: float) -> None:
        """The last fraction of a move: the stage makes it too; the motor then stands."""
        self._move(remaining)
        self.velocity_usteps_s = 0.0
        self._arrived = True

    def _move(self, delta: float) -> None:
        if not self.energized:
            return
        self.position_usteps += delta
        physical = self.physical_usteps + delta
        limit = self.stage.travel_usteps
        if self.stage.obstacle_usteps is not None:
            limit = min(limit, self.stage.obstacle_usteps)
        if delta > 0 and physical > limit:
            self.lost_usteps += physical - max(limit, self.physical_usteps)
            physical = max(limit, self.physical_usteps)
        elif delta < 0 and physical < self.stage.hard_stop_reverse_usteps:
            self.lost_usteps += self.stage.hard_stop_reverse_usteps - physical
            physical = self.stage.hard_stop_reverse_usteps
        self.physical_usteps = physical

    # --- what the host reads -----------------------------------------------------------------

    @property
    def stalled(self) -> bool:
        """Whether the motor has lost steps against something since power-up."""
        return self.lost_usteps > 0

    @property
    def energized(self) -> bool:
        if TicErrors.INTENTIONALLY_DEENERGIZED in self.errors:
            return False
        return not (self.errors and self.soft_error_response is SoftErrorResponse.DEENERGIZE)

    @property
    def operation_state(self) -> OperationState:
        if not self.errors:
            return OperationState.NORMAL
        if not self.energized:
            return OperationState.DEENERGIZED
        return OperationState.SOFT_ERROR

    def variables(self) -> bytes:
        image = bytearray(VARIABLES_SIZE)
        flags = MiscFlags(0)
        if self.energized:
            flags |= MiscFlags.ENERGIZED
        if self.position_uncertain:
            flags |= MiscFlags.POSITION_UNCERTAIN
        if self.physical_usteps <= 0.0:
            flags |= MiscFlags.REVERSE_LIMIT_ACTIVE
        if self.homing is not None:
            flags |= MiscFlags.HOMING_ACTIVE
        Var.OPERATION_STATE.pack_into(image, self.operation_state)
        Var.MISC_FLAGS1.pack_into(image, flags)
        Var.ERROR_STATUS.pack_into(image, self.errors & ERROR_STATUS_MASK)
        Var.ERRORS_OCCURRED.pack_into(image, self.errors_occurred)
        Var.PLANNING_MODE.pack_into(image, self.planning)
        Var.TARGET_POSITION.pack_into(image, self.target_position_usteps)
        Var.TARGET_VELOCITY.pack_into(image, self.target_velocity_usteps_per_10ks)
        Var.MAX_SPEED.pack_into(image, self.max_speed)
        Var.MAX_DECEL.pack_into(image, self.max_decel)
        Var.MAX_ACCEL.pack_into(image, self.max_accel)
        Var.CURRENT_POSITION.pack_into(image, round(self.position_usteps))
        Var.CURRENT_VELOCITY.pack_into(image, round(self.velocity_usteps_s * SPEED_UNITS_PER_HZ))
        Var.ACTING_TARGET_POSITION.pack_into(image, self.target_position_usteps)
        Var.VIN_VOLTAGE.pack_into(image, VIN_MV)
        Var.UP_TIME.pack_into(image, round((self._now_s - self.up_since_s) * 1000) & 0xFFFF_FFFF)
        Var.ENCODER_POSITION.pack_into(
            image, round(self.physical_usteps - self.encoder_zero_usteps)
        )
        Var.STEP_MODE.pack_into(image, self.step_mode)
        Var.CURRENT_LIMIT.pack_into(image, self.current_limit_code)
        return bytes(image)
