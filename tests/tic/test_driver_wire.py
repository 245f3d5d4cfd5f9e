"""The Tic driver's exchanges on the wire, consumed exactly: USB control transfers and serial bytes."""

from __future__ import annotations

import pytest

from drivers.sim.usb.backend import SimUsbBackend
from drivers.tic.codec import (
    STATUS_READ_LENGTH,
    TIC_VENDOR_ID,
    HomeDirection,
    TicProduct,
    Var,
)
from drivers.tic.driver import TicConfigurationError, TicStepper
from drivers.tic.serial import TicSerialTransport
from drivers.tic.usb import TicUsbTransport
from tests.support.scripted_peer import ScriptedPeer
from tests.support.scripted_usb import ScriptedUsbDevice, Setup


def status_block(position_usteps: int = 0) -> bytes:
    block = bytearray(STATUS_READ_LENGTH)
    Var.OPERATION_STATE.pack_into(block, 10)
    Var.CURRENT_POSITION.pack_into(block, position_usteps)
    return bytes(block)


def scripted_tic(script: list[tuple[Setup, bytes]]) -> tuple[ScriptedUsbDevice, TicStepper]:
    bus = SimUsbBackend()
    device = ScriptedUsbDevice(TIC_VENDOR_ID, TicProduct.T825, script)
    bus.attach(device)
    return device, TicStepper(TicUsbTransport(backend=bus))


async def test_usb_operations_are_these_control_transfers_exactly() -> None:
    block = status_block(position_usteps=-2)
    device, tic = scripted_tic(
        [
            ((0xC0, 0xA1, 0, 0x00, STATUS_READ_LENGTH), block),
            ((0x40, 0x85, 0, 0, b""), b""),
            ((0x40, 0x83, 0, 0, b""), b""),
            ((0x40, 0xE6, 0x2D00, 0x0131, b""), b""),  # max speed 20,000,000
            ((0x40, 0xEA, 0x4240, 0x000F, b""), b""),  # max accel 1,000,000
            ((0x40, 0xE0, 0xFC18, 0xFFFF, b""), b""),  # target position -1000
            ((0x40, 0x97, 0, 0, b""), b""),  # go home, reverse
            ((0x40, 0x8C, 0, 0, b""), b""),
            ((0x40, 0x89, 0, 0, b""), b""),
            ((0xC0, 0xA2, 0, 0x00, STATUS_READ_LENGTH), block),
        ]
    )
    status = await tic.connect()
    assert status.position_usteps == -2
    await tic.energize()
    await tic.exit_safe_start()
    await tic.set_max_speed(20_000_000)
    await tic.set_max_accel(1_000_000)
    await tic.set_target_position(-1000)
    await tic.go_home(HomeDirection.REVERSE)
    await tic.reset_command_timeout()
    await tic.halt_and_hold()
    await tic.status(clear_errors_occurred=True)
    await tic.close()
    device.finished()


async def test_usb_command_timeout_is_written_byte_by_byte_then_applied_by_reinitialize() -> None:
    device, tic = scripted_tic(
        [
            ((0xC0, 0xA1, 0, 0x00, STATUS_READ_LENGTH), status_block()),
            ((0xC0, 0xA8, 0, 0x09, 2), b"\xe8\x03"),  # 1000 ms
            ((0x40, 0x13, 0xFA, 0x09, b""), b""),  # 250 = 0x00FA
            ((0x40, 0x13, 0x00, 0x0A, b""), b""),
            ((0x40, 0x10, 0, 0, b""), b""),  # reinitialize
            ((0xC0, 0xA8, 0, 0x09, 2), b"\xfa\x00"),
        ]
    )
    await tic.connect()
    await tic.configure_command_timeout(250)
    await tic.close()
    device.finished()


async def test_serial_operations_are_these_bytes_exactly_and_status_is_six_reads() -> None:
    block = status_block(position_usteps=1_234_567_890)
    reads = [
        (bytes((0xA1, offset, min(15, STATUS_READ_LENGTH - offset))), block[offset : offset + 15])
        for offset in range(0, STATUS_READ_LENGTH, 15)
    ]
    script = [
        *reads,
        (b"\x83", b""),
        (b"\xe0\x05\x52\x02\x16\x49", b""),
        (b"\xa8\x09\x02", b"\xc8\x00"),  # command timeout 200 ms: as configured
        (b"\x8c", b""),
    ]
    async with ScriptedPeer(script) as peer:
        tic = TicStepper(TicSerialTransport(peer.path, baudrate=115200))
        status = await tic.connect()
        assert status.position_usteps == 1_234_567_890
        await tic.exit_safe_start()
        await tic.set_target_position(1_234_567_890)
        await tic.configure_command_timeout(200)
        await tic.reset_command_timeout()
        await peer.finished()
        await tic.close()


async def test_serial_refuses_to_arm_a_timeout_it_cannot_write() -> None:
    async with ScriptedPeer([(b"\xa8\x09\x02", b"\xe8\x03")], turn_taking=True) as peer:
        tic = TicStepper(TicSerialTransport(peer.path, baudrate=115200))
        await tic.transport.open()
        with pytest.raises(TicConfigurationError, match=r"command timeout = 1000 \(expected 200\)"):
            await tic.configure_command_timeout(200)
        await peer.finished()
        await tic.close()


async def test_pololu_protocol_with_crc_addresses_the_device_number() -> None:
    async with ScriptedPeer([(b"\xaa\x0e\x03\x22", b"")]) as peer:
        tic = TicStepper(TicSerialTransport(peer.path, device_number=14, crc=True))
        await tic.transport.open()
        await tic.exit_safe_start()
        await peer.finished()
        await tic.close()
