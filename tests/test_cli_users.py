"""`rig users`: a site broker's users, their roles, and a real Mosquitto that enforces them."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.transport.mqtt import BrokerRefusedError, MqttEndpoint, RequestTimeoutError
from rig.api.roles import Role, ServiceUser, broker_acl
from rig.broker import find_mosquitto, free_loopback_port
from rig.cli.main import main


def _add(directory: Path, name: str, role: str, password: str) -> int:
    stdin, sys.stdin = sys.stdin, io.StringIO(f"{password}\n")
    try:
        return main(
            ["users", "add", name, "--role", role, "--dir", str(directory), "--password-stdin"]
        )
    finally:
        sys.stdin = stdin


def test_users_are_written_with_the_acl_of_their_role(tmp_path: Path) -> None:
    assert _add(tmp_path, "dr-lee", "surgeon", "pw-lee") == 0
    assert _add(tmp_path, "bench-2", "rigd", "pw-rig") == 0
    assert json.loads((tmp_path / "users.json").read_text()) == {
        "bench-2": "rigd",
        "dr-lee": "surgeon",
    }
    acl = (tmp_path / "acl").read_text()
    assert acl == broker_acl({"bench-2": ServiceUser.DAEMON, "dr-lee": Role.SURGEON})
    assert "user dr-lee\n" in acl and "topic write rig/+/cmd/surgeon" in acl
    assert (tmp_path / "passwd").stat().st_mode & 0o777 == 0o600
    assert "dr-lee:" in (tmp_path / "passwd").read_text()
    assert main(["users", "remove", "dr-lee", "--dir", str(tmp_path)]) == 0
    assert "dr-lee" not in (tmp_path / "acl").read_text()
    assert "dr-lee:" not in (tmp_path / "passwd").read_text()


@pytest.mark.parametrize("name", ["Dr Lee", "a+b", "#", "x" * 33, ""])
def test_a_name_that_would_break_the_acl_is_refused(tmp_path: Path, name: str) -> None:
    assert _add(tmp_path, name, "surgeon", "pw") == 1
    assert not (tmp_path / "acl").exists()


async def test_a_real_mosquitto_holds_each_user_to_its_role(tmp_path: Path) -> None:
    assert _add(tmp_path, "dr-lee", "surgeon", "pw-lee") == 0
    assert _add(tmp_path, "watcher", "observer", "pw-w") == 0
    port = free_loopback_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {tmp_path / 'passwd'}\nacl_file {tmp_path / 'acl'}\n"
        "user root\n"
    )
    broker = await asyncio.create_subprocess_exec(
        find_mosquitto(), "-c", str(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await asyncio.sleep(0.3)
        async with MqttEndpoint("127.0.0.1", port, username="dr-lee", password="pw-lee") as lee:
            # Her own command topic takes the request (no daemon answers it here)...
            with pytest.raises(RequestTimeoutError):
                await lee.request("rig/r1/cmd/surgeon", {"op": "status"}, timeout_s=0.3)
            # ...an engineer's refuses it at the broker.
            with pytest.raises(BrokerRefusedError):
                await lee.request("rig/r1/cmd/engineer", {"op": "status"}, timeout_s=0.3)
        async with MqttEndpoint("127.0.0.1", port, username="watcher", password="pw-w") as w:
            with pytest.raises(BrokerRefusedError):
                await w.request("rig/r1/cmd/surgeon", {"op": "status"}, timeout_s=0.3)
        with pytest.raises(Exception, match=r"(?i)not authori[sz]ed|bad user name or password"):
            async with MqttEndpoint("127.0.0.1", port, username="dr-lee", password="wrong"):
                pass
    finally:
        broker.terminate()
        await broker.wait()
