"""TLS to the broker: a real Mosquitto TLS listener with a throwaway CA made by openssl.

A profile's `broker.tls_ca_file` must make the connection TLS and verify the broker against that
CA: a client without the CA, or one trusting another CA, must not connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from drivers.transport.mqtt import MqttEndpoint
from rig.broker import find_mosquitto, free_loopback_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def _make_server_cert(directory: Path, ca_key: Path, ca_cert: Path) -> tuple[Path, Path]:
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    subprocess.run(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(csr),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca_cert),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            str(ext),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@contextlib.asynccontextmanager
async def tls_broker(directory: Path) -> AsyncIterator[tuple[int, Path, Path]]:
    ca_key, ca_cert = _make_ca(directory, "rig-test-ca")
    _, other_ca = _make_ca(directory, "some-other-ca")
    key, cert = _make_server_cert(directory, ca_key, ca_cert)
    port = free_loopback_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\ncafile {ca_cert}\ncertfile {cert}\nkeyfile {key}\n"
        f"allow_anonymous true\npersistence false\nuser {getpass.getuser()}\n"
    )
    process = await asyncio.create_subprocess_exec(
        find_mosquitto(),
        "-c",
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.02)
        yield port, ca_cert, other_ca
    finally:
        process.terminate()
        await process.wait()


async def test_a_client_with_the_brokers_ca_talks_over_tls(tmp_path: Path) -> None:
    async with tls_broker(tmp_path) as (port, ca_cert, _):  # noqa: SIM117 - the client needs the port
        async with MqttEndpoint("localhost", port, tls_ca_file=ca_cert) as mqtt:
            queue = await mqtt.subscribe("rig/test/state")
            await mqtt.publish("rig/test/state", {"online": True})
            message = await asyncio.wait_for(queue.get(), 5.0)
            assert message.payload == b'{"online":true}'


async def test_a_client_without_the_ca_or_with_another_ca_is_refused(tmp_path: Path) -> None:
    async with tls_broker(tmp_path) as (port, _, other_ca):
        with pytest.raises(aiomqtt.MqttError):
            async with MqttEndpoint("localhost", port, tls_ca_file=other_ca):
                pass
        with pytest.raises(aiomqtt.MqttError):
            async with MqttEndpoint("localhost", port):  # plaintext to a TLS listener
                pass
