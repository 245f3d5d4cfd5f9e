"""`rig console`: the surgeon's console, a web page for the operating-room monitor.

It logs in to the rig's broker as `--role` (default surgeon; the running simulated rig's
credentials unless --credentials), serves the page on --host:--port (default the loopback
interface, a free port) and prints the page's address with its session token. docs/console.md.
"""

from __future__ import annotations

import argparse
import asyncio

from rig.api.roles import Role
from rig.cli.client_cmds import (
    EXIT_REFUSED,
    ClientError,
    connection_options,
    run_client,
    target_of,
)
from rig.console.server import ConsoleServer, new_token, serving

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
    console.set_defaults(func=lambda a: run_client(_console(a)))


async def _console(args: argparse.Namespace) -> int:
    target = target_of(args)
    token = new_token()
    server = ConsoleServer(target.rig_id, target.role, token=token)
    async with serving(server, args.host, args.port) as port:
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
