"""The Tic's USB face: vendor control transfers on endpoint 0 into the Tic model.

Every request is decoded with the codec's device side (`decode_usb`); what it cannot read is
stalled, as the Tic stalls an unknown request. The model is stepped to the clock's time before
each request, so the command timeout and the motion happen at the right time without a task of
their own; `sync` steps it for an observer (a test, the world).

Power: the Tic's logic runs from VIN (the motor supply) as well as from USB, so by default
(`vin_powered`) pulling the USB cable only silences the host: the Tic keeps running, its command
timeout fires and its soft-error response holds the motor; plugging back in re-enumerates it
without a reset. With `vin_powered=False` the cable is its only supply.

Descriptors: the Tic's vendor id and the T825's product id, one vendor-specific interface with
no endpoints besides endpoint 0 (what the host driver uses; the real Tic's other interfaces are
not emulated).
"""

from __future__ import annotations

from drivers.clock import REAL_CLOCK, Clock
from drivers.sim.tic_device import TicModel
from drivers.sim.usb.descriptors import (
    CLASS_VENDOR,
    ConfigurationDescriptor,
    DeviceDescriptor,
    InterfaceDescriptor,
)
from drivers.sim.usb.device import SimUsbDevice, UsbStallError
from drivers.tic.codec import (
    TIC_VENDOR_ID,
    Command,
    TicCommand,
    TicProduct,
    TicProtocolError,
    decode_usb,
)

FIRMWARE_BCD = 0x0109
FIRMWARE_MODIFICATION_STRING_INDEX = 4


class SimTicUsb(SimUsbDevice):
    def __init__(
        self,
        model: TicModel | None = None,
        *,
        serial_number: str = "00123456",
        product: TicProduct = TicProduct.T825,
        clock: Clock = REAL_CLOCK,
        vin_powered: bool = True,
    ) -> None:
        super().__init__(
            DeviceDescriptor(TIC_VENDOR_ID, product, bcdDevice=FIRMWARE_BCD),
            ConfigurationDescriptor((InterfaceDescriptor(0, CLASS_VENDOR),)),
            {
                1: "Pololu Corporation",
                2: f"Tic USB Stepper Motor Controller {product.name}",
                3: serial_number,
                FIRMWARE_MODIFICATION_STRING_INDEX: "-",
            },
        )
        self.model = model if model is not None else TicModel()
        self.halt_request_at_s: float | None = None
        """When the last halt-and-hold request arrived, on CLOCK_MONOTONIC (the benchmarks')."""
        self._clock = clock
        self.vin_powered = vin_powered

    def sync(self) -> TicModel:
        """Step the model to now and return it (read it while nothing else steps it)."""
        with self.lock:
            self.model.advance(self._clock.monotonic())
            return self.model

    def on_power_up(self) -> None:
        if not self.model.powered:
            self.model.power_up(self._clock.monotonic())

    def on_power_down(self) -> None:
        if not self.vin_powered:
            self.model.power_down(self._clock.monotonic())

    def vendor_or_class_in(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes:
        return self._handle(request_type, request, value, index, length)

    def vendor_or_class_out(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> None:
        self._handle(request_type, request, value, index, len(data))

    def _handle(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes:
        try:
            decoded = decode_usb(request_type, request, value, index, length)
        except TicProtocolError as exc:
            raise UsbStallError(str(exc)) from None
        now_s = self._clock.monotonic()
        if isinstance(decoded, Command) and decoded.command is TicCommand.HALT_AND_HOLD:
            self.halt_request_at_s = now_s
        return self.model.handle(decoded, now_s)
