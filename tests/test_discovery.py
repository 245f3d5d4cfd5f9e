"""Device discovery and port-spec resolution, with synthetic port lists (no hardware needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import usb.core
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from drivers.transport.discovery import (
    PortResolutionError,
    SerialPortInfo,
    UsbScan,
    known_device,
    list_serial_ports,
    list_usb_devices,
    resolve_port,
)
from rig.cli import devices_cmd
from rig.cli.main import main
from rig.config import CONFIG_DIR, PathPort, SimPort, UsbMatch, UsbPort

FTDI_A = SerialPortInfo(
    device="/dev/ttyUSB0",
    vid=0x0403,
    pid=0x6001,
    serial_number="A10K1XYZ",
    manufacturer="FTDI",
    product="FT232R USB UART",
    by_id="/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1XYZ-if00-port0",
)
FTDI_B = SerialPortInfo(device="/dev/ttyUSB1", vid=0x0403, pid=0x6001, serial_number="B20K2ABC")
BOARD = SerialPortInfo(device="/dev/ttyACM0", vid=0x1209, pid=0x0001, serial_number="IOB-0007")
PORTS = [FTDI_A, FTDI_B, BOARD]


def usb_spec(vid: int, pid: int, serial_number: str | None = None) -> UsbPort:
    return UsbPort(usb=UsbMatch(vid=vid, pid=pid, serial_number=serial_number))


# --- resolve_port ----------------------------------------------------------------------------


def test_usb_spec_with_serial_number_picks_that_adaptor() -> None:
    assert resolve_port(usb_spec(0x0403, 0x6001, "B20K2ABC"), PORTS) == "/dev/ttyUSB1"


def test_usb_spec_matching_one_port_needs_no_serial_number() -> None:
    assert resolve_port(usb_spec(0x1209, 0x0001), PORTS) == "/dev/ttyACM0"


def test_usb_spec_matching_several_ports_is_an_error_suggesting_serial_number() -> None:
    with pytest.raises(PortResolutionError, match="2 ports match") as info:
        resolve_port(usb_spec(0x0403, 0x6001), PORTS)
    message = str(info.value)
    assert "/dev/ttyUSB0" in message and "/dev/ttyUSB1" in message
    assert "serial_number" in message


def test_usb_spec_matching_nothing_is_an_error_listing_what_is_attached() -> None:
    with pytest.raises(PortResolutionError, match="no attached serial port matches") as info:
        resolve_port(usb_spec(0x0403, 0x6001, "NOPE"), PORTS)
    assert "A10K1XYZ" in str(info.value)


def test_usb_spec_with_no_ports_at_all() -> None:
    with pytest.raises(PortResolutionError, match="no serial ports attached"):
        resolve_port(usb_spec(0x0403, 0x6001), [])


def test_path_spec_matches_the_device_path() -> None:
    assert resolve_port(PathPort(path="/dev/ttyUSB1"), PORTS) == "/dev/ttyUSB1"


def test_path_spec_by_id_link_is_returned_as_given() -> None:
    assert FTDI_A.by_id is not None
    assert resolve_port(PathPort(path=FTDI_A.by_id), PORTS) == FTDI_A.by_id


def test_path_spec_not_attached_is_an_error() -> None:
    with pytest.raises(PortResolutionError, match="no attached serial port has that path"):
        resolve_port(PathPort(path="/dev/ttyUSB9"), PORTS)


def test_path_spec_naming_a_pseudo_terminal_resolves_though_pyserial_never_lists_one(
    tmp_path: Path,
) -> None:
    """A simulator's device, or a test's stand-in for a real one (the hybrid bench), is a pty."""
    controller_fd, device_fd = os.openpty()
    try:
        pty_path = os.ttyname(device_fd)
        link = tmp_path / "pump"
        link.symlink_to(pty_path)
        assert pty_path not in {port.device for port in list_serial_ports()}
        assert resolve_port(PathPort(path=pty_path), []) == pty_path
        assert resolve_port(PathPort(path=str(link)), PORTS) == str(link)
    finally:
        os.close(controller_fd)
        os.close(device_fd)
    with pytest.raises(PortResolutionError, match="no attached serial port has that path"):
        resolve_port(PathPort(path=str(link)), PORTS)  # the pty has gone


def test_sim_spec_cannot_be_resolved_against_attached_ports() -> None:
    with pytest.raises(PortResolutionError, match="simulator"):
        resolve_port(SimPort(sim="pump"), PORTS)


def test_pyserial_list_port_info_converts_to_the_typed_stand_in() -> None:
    info = ListPortInfo("/dev/ttyUSB3", skip_link_detection=True)
    info.vid, info.pid, info.serial_number = 0x067B, 0x2303, "PL1"
    port = SerialPortInfo.from_list_port_info(info, by_id="/dev/serial/by-id/x")
    assert (port.device, port.vid_pid, port.serial_number) == ("/dev/ttyUSB3", "067b:2303", "PL1")
    assert resolve_port(usb_spec(0x067B, 0x2303), [port]) == "/dev/ttyUSB3"
    assert port.known_as is not None and "Prolific" in port.known_as


# --- known devices ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vid", "pid", "word"),
    [
        (0x1FFB, 0x00B5, "Tic T834"),
        (0x1FFB, 0x00CB, "Tic 36v4"),
        (0x05F3, 0x00FF, "VEC"),
        (0x0C45, 0x7403, "foot switch"),
        (0x0C45, 0x7404, "foot switch"),
        (0x413D, 0x2107, "foot switch"),
        (0x1A86, 0xE026, "foot switch"),
        (0x3553, 0xB001, "foot switch"),
        (0x0403, 0x6015, "FTDI"),
    ],
)
def test_known_devices_are_named(vid: int, pid: int, word: str) -> None:
    name = known_device(vid, pid)
    assert name is not None and word in name


def test_unknown_device_is_not_named() -> None:
    assert known_device(0x1234, 0x5678) is None
    assert known_device(None, None) is None


# --- listing ---------------------------------------------------------------------------------


def test_list_usb_devices_without_libusb_reports_instead_of_raising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_backend(**_: Any) -> Any:
        raise usb.core.NoBackendError("No backend available")

    monkeypatch.setattr(usb.core, "find", no_backend)
    scan = list_usb_devices()
    assert scan.devices == []
    assert scan.error is not None and "libusb" in scan.error


def test_list_serial_ports_adds_by_id_links(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    device = tmp_path / "ttyUSB7"
    device.touch()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-FTDI_X-if00-port0").symlink_to(device)
    info = ListPortInfo(str(device), skip_link_detection=True)
    monkeypatch.setattr(list_ports, "comports", lambda: [info])
    (port,) = list_serial_ports(by_id_dir=by_id)
    assert port.by_id == str(by_id / "usb-FTDI_X-if00-port0")
    assert resolve_port(PathPort(path=port.by_id), [port]) == port.by_id


# --- the command -----------------------------------------------------------------------------


def test_rig_devices_on_this_machine_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "Serial ports:" in out and "USB devices:" in out


def test_rig_devices_json_on_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data["serial_ports"], list)
    assert set(data["usb"]) == {"error", "devices"}


@pytest.fixture
def no_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices_cmd, "list_serial_ports", lambda: [])
    monkeypatch.setattr(devices_cmd, "list_usb_devices", lambda: UsbScan())


@pytest.fixture
def bench_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices_cmd, "list_serial_ports", lambda: PORTS)
    monkeypatch.setattr(devices_cmd, "list_usb_devices", lambda: UsbScan(error="no backend"))


@pytest.mark.usefixtures("no_devices")
def test_rig_devices_with_nothing_attached_says_so_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "no serial ports found" in out
    assert "no USB devices found" in out


@pytest.mark.usefixtures("no_devices")
def test_rig_devices_with_sim_profile_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--profile", str(CONFIG_DIR / "sim.toml")]) == 0
    assert "supplied by the simulator" in capsys.readouterr().out


@pytest.mark.usefixtures("no_devices")
def test_rig_devices_with_bench_profile_and_nothing_attached_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["devices", "--profile", str(CONFIG_DIR / "bench.example.toml")]) == 1
    assert "devices.board: NOT FOUND" in capsys.readouterr().out


@pytest.mark.usefixtures("bench_devices")
def test_rig_devices_marks_which_port_each_profile_device_uses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["devices", "--profile", str(CONFIG_DIR / "bench.example.toml")]) == 0
    out = capsys.readouterr().out
    ports = {line.split()[0]: line for line in out.splitlines() if line.startswith("  /dev/")}
    assert "<- devices.pump" in ports["/dev/ttyUSB0"]
    assert "<- devices.board" in ports["/dev/ttyACM0"]
    assert "<-" not in ports["/dev/ttyUSB1"]
    assert "cannot list USB devices: no backend" in out


@pytest.mark.usefixtures("bench_devices")
def test_rig_devices_json_with_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json", "--profile", str(CONFIG_DIR / "bench.example.toml")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile"]["devices.board"]["port"] == "/dev/ttyACM0"
    by_device = {p["device"]: p for p in data["serial_ports"]}
    assert by_device["/dev/ttyACM0"]["profile_devices"] == ["devices.board"]


def test_rig_devices_with_unreadable_profile_exits_2(tmp_path: Path) -> None:
    assert main(["devices", "--profile", str(tmp_path / "absent.toml")]) == 2
