"""`./run`'s Debian set-up step, run with stand-in `ldconfig` and `mosquitto` so that it shows
what it would install without installing anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "run"
LIBUSB_LINE = "\tlibusb-1.0.so.0 (libc6,x86-64) => /lib/x86_64-linux-gnu/libusb-1.0.so.0\n"


def _packages_to_install(tmp_path: Path, ldconfig_output: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "ldconfig.txt").write_text(ldconfig_output)
    for name, body in (
        ("ldconfig", f'cat "{tmp_path / "ldconfig.txt"}"'),
        ("mosquitto", "exit 0"),
    ):
        stub = bin_dir / name
        stub.write_text(f"#!/bin/sh\n{body}\n")
        stub.chmod(0o755)
    # The function as the script defines it; as_root only says what it would run.
    script = (
        f"source <(sed -n '/^ensure_debian_packages()/,/^}}/p' {RUN})\n"
        'as_root() { echo "as_root $*" >&2; }\n'
        "ensure_debian_packages\n"
    )
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}"),
        timeout=30,
        check=True,
    )
    return result.stdout + result.stderr


def test_run_sim_installs_libusb_when_it_is_missing(tmp_path: Path) -> None:
    out = _packages_to_install(tmp_path, "0 libs found in cache\n")
    assert "installing Debian packages: libusb-1.0-0" in out
    assert "apt-get install -y -qq libusb-1.0-0" in out


def test_run_sim_installs_nothing_when_libusb_is_there(tmp_path: Path) -> None:
    assert _packages_to_install(tmp_path, LIBUSB_LINE) == ""
