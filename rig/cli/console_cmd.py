"""`rig console`: the surgeon's console, a web page for the operating-room monitor.

It logs in to the rig's broker as `--role` (default surgeon; the running simulated rig's
credentials unless --credentials), serves the page on --host:--port (default the loopback
interface, a free port) and prints the page's address with its session token. docs/console.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.clock import REAL_CLOCK
from drivers.transport.usb_remote import BUS_SOCKET_NAME
from rig.api.roles import Role
from rig.cli.client_cmds import (
    EXIT_ERROR_REPLY,
    EXIT_NO_DAEMON,
    EXIT_REFUSED,
    ClientError,
    connection_options,
    run_client,
    target_of,
)
from rig.config import DEFAULT_PROFILE, ProfileError, load_profile
from rig.devices.usb_port import sim_bus_port
from rig.runtime import RunningRig

if TYPE_CHECKING:
    # Imported where the console runs, not with every `rig` command: the web server pulls in
    # aiohttp, and the pedal the USB stack.
    from rig.console.pedal import PedalForwarder
    from rig.console.server import ConsoleServer

DEFAULT_PORT = 8321
RECONNECT_S = 1.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = subparsers.add_parser(
        "console",
        help="the surgeon's console: a web page with the scope video, gauges, trends and alarms",
    )
    connection_options(console)
    console.set_defaults(role=Role.SURGEON.value)
    console.add_argument(
        "--host",
        default="127.0.0.1",
        help="the interface to serve on (default 127.0.0.1: only this machine's browser)",
    )
    console.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the port to serve on, 0 for a free one (default {DEFAULT_PORT})",
    )
    console.add_argument(
        "--pedal-port",
        help="a foot pedal plugged into this console, forwarded to the rig (the profile's "
        "devices.pedal.port must be { console = ROLE }): usb: or usb:VVVV:PPPP[:SERIAL], or "
        "`sim` for the running simulated rig's pedal",
    )
    console.add_argument(
        "--profile",
        type=Path,
        default=DEFAULT_PROFILE,
        help=f"the rig's profile, for the pedal's section (default {DEFAULT_PROFILE.name})",
    )
    console.set_defaults(func=lambda a: run_client(_console(a)))


def _pedal_forwarder(args: argparse.Namespace, server: ConsoleServer) -> PedalForwarder:
    from rig.console.pedal import PedalForwarder
    from rig.devices.pedal import foot_pedal

    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        raise ClientError(f"{args.profile}:\n{exc}", EXIT_ERROR_REPLY) from None
    section = profile.devices.pedal
    if section is None:
        raise ClientError(f"{args.profile}: no [devices.pedal] section", EXIT_ERROR_REPLY)
    port = args.pedal_port
    if port == "sim":
        running = RunningRig.load()
        if running is None:
            raise ClientError("--pedal-port sim: no simulated rig is running", EXIT_NO_DAEMON)
        port = sim_bus_port(running.link_dir, BUS_SOCKET_NAME)
    pedal = foot_pedal(section, port, REAL_CLOCK)
    return PedalForwarder(pedal, server.command, section.forward_timeout_ms / 1000.0)


@contextlib.contextmanager
def _running(coroutine: Coroutine[Any, Any, None]) -> Iterator[None]:
    task = asyncio.create_task(coroutine)
    task.add_done_callback(_report_end)
    try:
        yield
    finally:
        task.cancel()


def _report_end(task: asyncio.Task[None]) -> None:
    """The pedal forwarder ends only by a bug: say so loudly (the rig counts its silence as a
    release, so the saline stops; the surgeon must know why the pedal no longer works)."""
    if not task.cancelled() and task.exception() is not None:
        print(f"rig console: the pedal forwarder failed: {task.exception()!r}", flush=True)


async def _console(args: argparse.Namespace) -> int:
    from rig.console.server import ConsoleServer, new_token, serving

    target = target_of(args)
    token = new_token()
    server = ConsoleServer(target.rig_id, target.role, token=token)
    forwarder = None if args.pedal_port is None else _pedal_forwarder(args, server)
    async with contextlib.AsyncExitStack() as stack:
        port = await stack.enter_async_context(serving(server, args.host, args.port))
        if forwarder is not None:
            stack.enter_context(_running(forwarder.run()))
        address = f"http://{args.host}:{port}"
        print(f"console for rig {target.rig_id} as {target.role.value}:", flush=True)
        print(f"  {address}/?token={token}", flush=True)
        print(f"  engineering view: {address}/engineering?token={token}", flush=True)
        while True:
            # The page stays up while the broker is away; it says so, and the console logs in
            # again (a refused login is final: wrong credentials do not get better).
            try:
                async with target.connect() as mqtt:
                    await server.bridge(mqtt)
            except ClientError as exc:
                if exc.exit_code == EXIT_REFUSED:
                    raise
                print(f"rig console: {exc}; retrying", flush=True)
            await asyncio.sleep(RECONNECT_S)
