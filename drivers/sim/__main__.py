"""`python -m drivers.sim`: the simulated rig as its own process.

It runs apart from the daemon on purpose: killing the daemon must leave the emulated pump and
board running, so their own safety (safe-mode timeout, watchdog) can be seen to act.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path

from drivers.sim.camera.stream import parse_camera
from drivers.sim.rig_sim import (
    DEFAULT_BAUDRATES,
    SERIAL_DEVICES,
    RigSimulator,
    SimSettings,
    serve_forever,
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m drivers.sim", description=__doc__)
    parser.add_argument("--link-dir", type=Path, required=True, help="where the device symlinks go")
    parser.add_argument("--broker", required=True, help="HOST:PORT of the MQTT broker")
    parser.add_argument("--rig-id", required=True)
    parser.add_argument(
        "--baudrate",
        action="append",
        default=[],
        metavar="DEVICE=BAUD",
        help="an emulated device's line rate (repeat per device; default "
        + ", ".join(f"{name}={baud}" for name, baud in DEFAULT_BAUDRATES.items())
        + ")",
    )
    parser.add_argument("--syringe-diameter-mm", type=float, default=14.57)
    parser.add_argument("--pressure-noise-mmhg", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--camera",
        metavar="WIDTHxHEIGHT@FPS",
        help="serve the scope camera's MJPEG stream at this size and rate (default: no camera)",
    )
    parser.add_argument("--credentials", type=Path, help="JSON user -> password for the broker")
    parser.add_argument("--user", help="broker user name (with --credentials)")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s sim %(levelname)s %(name)s: %(message)s"
    )
    host, _, port = args.broker.rpartition(":")
    baudrates = dict(DEFAULT_BAUDRATES)
    for item in args.baudrate:
        name, _, baud = item.partition("=")
        if name not in SERIAL_DEVICES or not baud.isdigit():
            parser.error(
                f"--baudrate {item}: expected DEVICE=BAUD with DEVICE one of "
                f"{', '.join(SERIAL_DEVICES)}"
            )
        baudrates[name] = int(baud)
    camera = None
    if args.camera is not None:
        try:
            camera = parse_camera(args.camera, args.seed)
        except ValueError as exc:
            parser.error(str(exc))
    settings = SimSettings(
        link_dir=args.link_dir,
        baudrates=baudrates,
        syringe_diameter_mm=args.syringe_diameter_mm,
        pressure_noise_mmhg=args.pressure_noise_mmhg,
        seed=args.seed,
        camera=camera,
    )

    password = None
    if args.credentials is not None:
        password = json.loads(args.credentials.read_text())[args.user]

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()

        def stop() -> None:
            stopping.set()
            task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        async with RigSimulator(settings) as sim:
            await serve_forever(
                sim,
                host,
                int(port),
                args.rig_id,
                username=args.user,
                password=password,
                on_serving=lambda: (args.link_dir / "ready").write_text("ready\n"),
                stopping=stopping,
            )

    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
