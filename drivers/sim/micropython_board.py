"""A Raspberry Pi Pico with MicroPython, as `mpremote` sees it on its USB serial port.

`rig firmware flash` copies the I/O board's firmware onto a Pico with mpremote, which drives
MicroPython's raw REPL (docs/firmware.md, "Flashing"). This emulator speaks that REPL on a
pseudo-terminal, so the tests run the real mpremote against it:

- the friendly REPL; Ctrl-A enters the raw REPL (`raw REPL; CTRL-B to exit`, prompt `>`), Ctrl-B
  leaves it, Ctrl-D on an empty raw line is a soft reset (`OK`, `MPY: soft reboot`);
- raw mode: the code up to Ctrl-D, answered `OK`, then its output, 0x04, its error, 0x04;
- raw-paste mode (`0x05 A 0x01`, answered `R 0x01` and the window size; 0x01 from the board
  grants each further window; 0x04 ends the code and the board acknowledges it with 0x04);
- the code mpremote sends runs under CPython against a scratch directory that stands for the
  board's flash: `open`, `os` (stat, ilistdir, mkdir, remove, rmdir, rename), `hashlib`,
  `time.sleep_ms`, `machine.reset`. Errors read as MicroPython's (`OSError: [Errno 2] ENOENT`),
  which is what mpremote parses. Globals persist between executions until a soft reset, as on
  the board (mpremote's `f=open(...)` then `w(chunk)` relies on it).
- `import` finds modules in the flash as MicroPython does (`firmware.hal_rp2040` from
  `/firmware/`, `calibration` from `/`), run under the same stand-in modules, until a soft reset.
  `machine.Pin` and `machine.SPI` play the transducer's ADS1220 (`drivers.sim.ads1220`): its
  DRDY pin always has a conversion ready, and each SPI read is the bridge's code at the pressure
  written in `--pressure-file` (mmHg as text; none: 0), so a test applies a reference pressure
  while `rig firmware calibrate` runs.
- at start-up and at `machine.reset()`, if the flash holds `main.py`, the board runs the flashed
  firmware, that is the `firmware` package loaded from the flash directory (not the repository's)
  on the simulated board's HAL (`drivers.sim.flashed_board`), on the same pty. Like the real
  firmware it never gives the port back to the REPL (Ctrl-C is data to it).

Faults for the tests: `--corrupt-writes` flips a bit in every file written (a flash that does
not keep what it was sent); `--noise-mmhg`, `--sensitivity` make the transducer noisy or another
part than the rig's. It executes what it is sent with this process's rights: a test
fixture on a pty only this user can open, never a service.

Run: `python -m drivers.sim.micropython_board --flash DIR [--link PATH]`; it prints the pty's
path on its first line of output.
"""

from __future__ import annotations

import argparse
import builtins
import errno
import hashlib
import io
import math
import os
import select
import stat
import struct
import sys
import time
import traceback
import tty
import types
from pathlib import Path
from typing import Any

from drivers.sim.ads1220 import Bridge

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_BANNER = b"MicroPython v1.29.0 on 2026-08-01; Raspberry Pi Pico with RP2040 (emulated)\r\n"
PASTE_WINDOW = 128
"""Raw-paste flow-control window in bytes (MicroPython uses its stdin buffer size)."""
MODE_DIR, MODE_FILE = 0x4000, 0x8000
"""The st_mode values MicroPython's VFS reports."""


class _Reset(BaseException):
    """machine.reset(): leaves the running code at once, as the board's reset would."""


class Flash:
    """The board's filesystem: board paths (`/firmware/x.py`, or relative to `/`) mapped into a
    scratch directory, never outside it."""

    def __init__(self, root: Path, corrupt_writes: bool = False) -> None:
        self.root = root.resolve()
        self.corrupt_writes = corrupt_writes

    def path(self, board_path: str = "") -> Path:
        resolved = (self.root / board_path.lstrip("/")).resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise OSError(errno.ENOENT, "ENOENT")
        return resolved

    def open(self, board_path: str, mode: str = "r") -> Any:
        f = _os_error(open, self.path(board_path), mode)
        if self.corrupt_writes and ("w" in mode or "a" in mode) and "b" in mode:
            write = f.write

            def corrupting_write(data: bytes) -> int:
                data = bytes(data)
                return int(write(bytes([data[0] ^ 0x01]) + data[1:] if data else data))

            f.write = corrupting_write
        return f

    def os_module(self) -> types.ModuleType:
        flash = self

        def stat_(p: str) -> tuple[int, ...]:
            st = _os_error(os.stat, flash.path(p))
            mode = MODE_DIR if stat.S_ISDIR(st.st_mode) else MODE_FILE
            mtime = int(st.st_mtime)
            return (mode, 0, 0, 0, 0, 0, st.st_size, mtime, mtime, mtime)

        def ilistdir(p: str = "") -> Any:
            for entry in sorted(_os_error(os.scandir, flash.path(p)), key=lambda e: e.name):
                if entry.is_dir():
                    yield (entry.name, MODE_DIR, 0, 0)
                else:
                    yield (entry.name, MODE_FILE, 0, entry.stat().st_size)

        module = types.ModuleType("os")
        module.stat = stat_  # type: ignore[attr-defined]
        module.ilistdir = ilistdir  # type: ignore[attr-defined]
        module.listdir = lambda p="": [e[0] for e in ilistdir(p)]  # type: ignore[attr-defined]
        module.mkdir = lambda p: _os_error(os.mkdir, flash.path(p))  # type: ignore[attr-defined]
        module.remove = lambda p: _os_error(os.remove, flash.path(p))  # type: ignore[attr-defined]
        module.rmdir = lambda p: _os_error(os.rmdir, flash.path(p))  # type: ignore[attr-defined]
        module.rename = lambda a, b: _os_error(  # type: ignore[attr-defined]
            os.rename, flash.path(a), flash.path(b)
        )
        module.getcwd = lambda: "/"  # type: ignore[attr-defined]
        module.sep = "/"  # type: ignore[attr-defined]
        return module


def _os_error(func: Any, *args: Any) -> Any:
    """Call `func`, raising OSError the way MicroPython words it: `[Errno 2] ENOENT`."""
    try:
        return func(*args)
    except OSError as exc:
        code = exc.errno or errno.EIO
        raise _MpOSError(code, errno.errorcode.get(code, str(code))) from None


class _MpOSError(OSError):
    """MicroPython has one OSError class (no FileNotFoundError): its traceback says `OSError`."""

    def __init__(self, code: int, name: str) -> None:
        super().__init__(code, name)
        self.errno = code

    def __str__(self) -> str:
        return f"[Errno {self.args[0]}] {self.args[1]}"


class Interpreter:
    """Runs the code the raw REPL receives, with the board's modules standing in."""

    def __init__(self, flash: Flash, adc: Adc | None = None) -> None:
        self.flash = flash
        self.adc = adc if adc is not None else Adc(Bridge(), None)
        self.reset_requested = False
        self._modules: dict[str, Any] = {}
        self._builtins: dict[str, Any] = {}
        self.soft_reset()

    def soft_reset(self) -> None:
        self._globals: dict[str, Any] = {"__name__": "__main__"}
        self._flash_modules: dict[str, types.ModuleType] = {}

    def run(self, source: bytes) -> tuple[bytes, bytes]:
        """Execute `source`; its output and its error text (a MicroPython-like traceback)."""
        out = io.StringIO()
        machine = types.ModuleType("machine")

        def reset() -> None:
            self.reset_requested = True
            raise _Reset

        machine.reset = reset  # type: ignore[attr-defined]
        machine.soft_reset = reset  # type: ignore[attr-defined]
        machine.Pin = Pin  # type: ignore[attr-defined]
        machine.SPI = self.adc.spi  # type: ignore[attr-defined]
        micropython = types.ModuleType("micropython")
        micropython.kbd_intr = lambda chr_code: None  # type: ignore[attr-defined]
        sys_module = types.ModuleType("sys")
        sys_module.stdout = out  # type: ignore[attr-defined]
        sys_module.implementation = types.SimpleNamespace(  # type: ignore[attr-defined]
            name="micropython", version=(1, 29, 0), _machine="Raspberry Pi Pico with RP2040"
        )
        sys_module.platform = "rp2"  # type: ignore[attr-defined]
        time_module = types.ModuleType("time")
        time_module.sleep_ms = lambda ms: time.sleep(ms / 1000)  # type: ignore[attr-defined]
        time_module.sleep = time.sleep  # type: ignore[attr-defined]
        time_module.sleep_us = lambda us: time.sleep(us / 1e6)  # type: ignore[attr-defined]
        time_module.ticks_ms = lambda: time.monotonic_ns() // 1_000_000  # type: ignore[attr-defined]
        time_module.ticks_us = lambda: time.monotonic_ns() // 1000  # type: ignore[attr-defined]
        time_module.ticks_diff = lambda a, b: a - b  # type: ignore[attr-defined]
        modules: dict[str, Any] = {
            "os": self.flash.os_module(),
            "machine": machine,
            "micropython": micropython,
            "sys": sys_module,
            "time": time_module,
            "hashlib": hashlib,
            "gc": types.ModuleType("gc"),
            "struct": struct,
            "select": select,
            "math": math,
        }
        modules["uos"] = modules["vfs"] = modules["os"]
        self._modules = modules

        def import_(
            name: str, globals_: Any = None, locals_: Any = None, fromlist: Any = (), level: int = 0
        ) -> Any:
            if name in modules:
                return modules[name]
            module = self._import_from_flash(name)
            for item in fromlist or ():
                if not hasattr(module, item):
                    self._import_from_flash(f"{name}.{item}")
            return module if fromlist else self._flash_modules[name.split(".")[0]]

        def print_(*args: Any, **kwargs: Any) -> None:
            kwargs.pop("file", None)
            builtins.print(*args, file=out, **kwargs)

        self._builtins = {
            **builtins.__dict__,
            "__import__": import_,
            "print": print_,
            "open": self.flash.open,
        }
        self._globals["__builtins__"] = self._builtins
        error = ""
        try:
            exec(compile(source.decode(), "<stdin>", "exec"), self._globals)
        except _Reset:
            pass
        except SyntaxError as exc:
            error = f'Traceback (most recent call last):\r\n  File "<stdin>", line {exc.lineno}\r\nSyntaxError: invalid syntax\r\n'
        except Exception as exc:  # the board prints any exception and carries on
            line = traceback.extract_tb(exc.__traceback__)[-1].lineno
            name = "OSError" if isinstance(exc, OSError) else type(exc).__name__
            error = (
                "Traceback (most recent call last):\r\n"
                f'  File "<stdin>", line {line}, in <module>\r\n{name}: {exc}\r\n'
            )
        return out.getvalue().replace("\n", "\r\n").encode(), error.encode()

    def _import_from_flash(self, name: str) -> types.ModuleType:
        """`name` from the flash (a package's `__init__.py` or a `.py` file), loaded once until
        the next soft reset, its own imports going through the board's modules."""
        if name in self._flash_modules:
            return self._flash_modules[name]
        parent, _, leaf = name.rpartition(".")
        relative = name.replace(".", "/")
        init = self.flash.path(f"{relative}/__init__.py")
        path = init if init.is_file() else self.flash.path(f"{relative}.py")
        if not path.is_file():
            raise ImportError(f"no module named '{name}'")
        module = types.ModuleType(name)
        module.__file__ = "/" + str(path.relative_to(self.flash.root))
        if path == init:
            module.__path__ = ["/" + relative]
        module.__dict__["__builtins__"] = self._builtins
        if parent:
            setattr(self._import_from_flash(parent), leaf, module)
        self._flash_modules[name] = module
        try:
            exec(compile(path.read_bytes(), module.__file__, "exec"), module.__dict__)
        except BaseException:
            del self._flash_modules[name]
            raise
        return module


class Pin:
    """machine.Pin: levels only. The ADS1220's DRDY reads low: a conversion is always ready."""

    OUT, IN, PULL_UP = 1, 0, 1

    def __init__(self, pin_id: int, mode: int = 0, pull: int | None = None, value: int = 0) -> None:
        self.level = value

    def __call__(self, level: int) -> None:
        self.level = level

    def value(self, level: int | None = None) -> int:
        if level is not None:
            self.level = level
        return self.level


class Adc:
    """The ADS1220 on the board's SPI bus: each read is the bridge's code at the pressure the
    test wrote in `pressure_file` (mmHg as text) at that moment."""

    def __init__(self, bridge: Bridge, pressure_file: Path | None) -> None:
        self.bridge = bridge
        self.pressure_file = pressure_file

    def pressure_mmhg(self) -> float:
        if self.pressure_file is None or not self.pressure_file.is_file():
            return 0.0
        return float(self.pressure_file.read_text())

    def spi(self, spi_id: int, **settings: Any) -> Any:
        adc = self

        class Spi:
            def write(self, data: bytes) -> None:
                pass  # RESET, the configuration and START: the model converts as configured

            def readinto(self, buf: bytearray, write: int = 0) -> None:
                code = adc.bridge.code(adc.pressure_mmhg())
                buf[:3] = (code & 0xFFFFFF).to_bytes(3, "big")

        return Spi()


class MicroPythonBoard:
    """The REPL side of the board on the master end of a pty (blocking: a process of its own)."""

    def __init__(self, fd: int, flash: Flash, adc: Adc | None = None) -> None:
        self.fd = fd
        self.flash = flash
        self.interpreter = Interpreter(flash, adc)

    def send(self, data: bytes) -> None:
        while data:
            data = data[os.write(self.fd, data) :]

    def read(self) -> bytes:
        return os.read(self.fd, 1)

    def serve(self) -> None:
        """Boot, then answer until a hard reset boots the firmware."""
        self.send(FRIENDLY_BANNER + b">>> ")
        while not self.interpreter.reset_requested:
            if self.read() == CTRL_A:
                self.send(b"\r\n" + RAW_BANNER + b">")
                self._raw_repl()
            # the friendly REPL: mpremote only ever uses it to reach the raw one (Ctrl-C is
            # answered with a fresh prompt; anything else typed here is ignored)
            elif not self.interpreter.reset_requested:
                self.send(b"\r\n>>> ")

    def _raw_repl(self) -> None:
        line = b""
        while not self.interpreter.reset_requested:
            c = self.read()
            if c == CTRL_A:
                if line == CTRL_E + b"A":
                    self._raw_paste()
                    self.send(b">")
                else:
                    self.send(b"\r\n" + RAW_BANNER + b">")
                line = b""
            elif c == CTRL_B:
                self.send(b"\r\n>>> ")
                return
            elif c == CTRL_C:
                line = b""
            elif c == CTRL_D:
                self.send(b"OK")
                if not line:
                    self.interpreter.soft_reset()
                    self.send(b"\r\nMPY: soft reboot\r\n" + RAW_BANNER + b">")
                else:
                    self._execute(line)
                    self.send(b">")
                line = b""
            else:
                line += c

    def _raw_paste(self) -> None:
        self.send(b"R\x01" + PASTE_WINDOW.to_bytes(2, "little"))
        source = b""
        remain = PASTE_WINDOW
        while True:
            c = self.read()
            if c == CTRL_D:
                self.send(CTRL_D)
                break
            source += c
            remain -= 1
            if remain == 0:
                self.send(b"\x01")
                remain = PASTE_WINDOW
        self._execute(source)

    def _execute(self, source: bytes) -> None:
        out, err = self.interpreter.run(source)
        if self.interpreter.reset_requested:
            return  # the board resets: the rest of its answer never leaves it
        self.send(out + CTRL_D + err + CTRL_D)


def open_pty(link: Path | None) -> tuple[int, int, str]:
    """A raw pty: (master, slave, slave path). The slave stays open here so that the master does
    not read EIO between two clients (mpremote opens and closes the port for each command)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    if link is not None:
        link.unlink(missing_ok=True)
        link.symlink_to(path)
    return master, slave, path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flash", type=Path, required=True, help="directory standing for flash")
    parser.add_argument("--link", type=Path, help="a symlink to the pty, like /dev/serial/by-id")
    parser.add_argument("--corrupt-writes", action="store_true", help="flip a bit in every write")
    parser.add_argument(
        "--pressure-file", type=Path, help="the pressure the transducer sees: mmHg, as text"
    )
    parser.add_argument(
        "--noise-mmhg", type=float, default=Bridge.noise_mmhg, help="one conversion's noise (SD)"
    )
    parser.add_argument(
        "--sensitivity",
        type=float,
        default=Bridge.sensitivity_uv_per_v,
        help="the bridge's sensitivity, uV/V/mmHg",
    )
    args = parser.parse_args(argv)
    args.flash.mkdir(parents=True, exist_ok=True)
    master, slave, path = open_pty(args.link)
    print(path, flush=True)
    bridge = Bridge(sensitivity_uv_per_v=args.sensitivity, noise_mmhg=args.noise_mmhg)
    adc = Adc(bridge, args.pressure_file)
    board = MicroPythonBoard(master, Flash(args.flash, args.corrupt_writes), adc)
    while True:
        if (args.flash / "main.py").is_file():
            # The board boots main.py (at power-up and after each reset): this process becomes
            # the board running what is in its flash now.
            os.set_inheritable(master, True)
            os.set_inheritable(slave, True)  # held open across the exec, as above
            runner = "drivers.sim.flashed_board"
            os.execv(
                sys.executable,
                [sys.executable, "-m", runner, "--flash", str(args.flash), "--fd", str(master)],
            )
        board.serve()  # until machine.reset()
        board.interpreter.reset_requested = False


if __name__ == "__main__":
    main()
