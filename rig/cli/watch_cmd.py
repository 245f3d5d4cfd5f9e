"""`rig watch`: the rig live, for a bench engineer at a terminal.

On a terminal it is a dashboard (rich) that stays in place: pressure, flow and resistance with
sparklines of the last seconds, the rig's state and latched fault, the link statistics of each
device and the latest events. When stdout is not a terminal (a pipe, a file, a test) it prints
plain lines instead, one per update, so scripts can read it. `--csv FILE` appends every
telemetry row (all of them, at the telemetry rate) for later plotting.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from drivers.transport.mqtt import JsonObject
from rig.api.topics import RigTopics
from rig.cli.client_cmds import EXIT_NO_DAEMON, Target, connection_options, run_client, target_of

HISTORY_POINTS: Final = 60
"""Points per sparkline: 12 s at the default 5 updates per second."""
RECENT_EVENTS: Final = 6
SPARK_BLOCKS: Final = "▁▂▃▄▅▆▇█"

CSV_COLUMNS: Final = (
    "t_us",
    "mode",
    "pressure_mmhg",
    "flow_ml_min",
    "resistance_mmhg_min_per_ml",
    "resistance_rise_mmhg_min_per_ml_per_s",
    "pump_running",
    "run_volume_ul",
    "saline_ml",
    "contrast_ml",
    "fault",
)
"""The telemetry fields a row carries (the link statistics stay in the JSON telemetry)."""

QUANTITIES: Final = (
    ("pressure", "pressure_mmhg", "mmHg", 2),
    ("flow", "flow_ml_min", "mL/min", 3),
    ("resistance", "resistance_mmhg_min_per_ml", "mmHg·min/mL", 1),
)
LINK_COUNTERS: Final = (
    "connected",
    "rtt_ms",
    "frames_tx",
    "frames_rx",
    "crc_errors",
    "timeouts",
    "retries",
    "reconnects",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="live dashboard: pressure, flow, resistance, state, fault, links, events",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    connection_options(parser)
    parser.add_argument(
        "--count", type=int, default=0, help="stop after N updates (default 0: until Ctrl-C)"
    )
    parser.add_argument(
        "--hz",
        type=float,
        default=5.0,
        help="updates per second, default 5 (telemetry comes at telemetry.fluid_hz, 50 Hz)",
    )
    parser.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="append every telemetry row (not only the shown ones) to FILE, a header first",
    )
    parser.set_defaults(func=lambda a: run_client(watch(a, target_of(a))))


@dataclass
class Dashboard:
    """What the dashboard shows, fed message by message; `render()` draws it."""

    telemetry: JsonObject = field(default_factory=dict)
    state: JsonObject = field(default_factory=dict)
    history: dict[str, deque[float]] = field(
        default_factory=lambda: {key: deque(maxlen=HISTORY_POINTS) for _, key, _, _ in QUANTITIES}
    )
    events: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))

    def on_telemetry(self, data: JsonObject) -> None:
        self.telemetry = data

    def sample(self) -> None:
        """One point per sparkline (called at the update rate, not the telemetry rate)."""
        for _, key, _, _ in QUANTITIES:
            value = self.telemetry.get(key)
            if isinstance(value, int | float):
                self.history[key].append(float(value))

    def on_state(self, state: JsonObject) -> None:
        self.state = state

    def on_event(self, event: JsonObject) -> None:
        self.events.append(describe_event(event))

    def render(self) -> RenderableType:
        data = self.telemetry
        values = Table.grid(padding=(0, 2))
        for name, key, unit, decimals in QUANTITIES:
            value = data.get(key)
            shown = "-" if value is None else f"{value:.{decimals}f}"
            values.add_row(
                Text(name, style="bold"),
                Text(shown, justify="right"),
                unit,
                Text(sparkline(self.history[key]), style="cyan"),
            )
        volumes = (
            f"saline {data.get('saline_ml', 0):.3f} mL   contrast {data.get('contrast_ml', 0):.3f} mL"
            f"   run {data.get('run_volume_ul', 0):.1f} uL"
        )
        fault = self.state.get("fault")
        online = self.state.get("online", bool(data))
        rig_state = str(self.state.get("state", "?")) if online else "OFFLINE"
        header = Text.assemble(
            ("state ", "bold"),
            (rig_state, "green" if rig_state == "ready" else "bold red"),
            ("   mode ", "bold"),
            str(data.get("mode", self.state.get("mode", "?"))),
            ("   pump ", "bold"),
            "running" if data.get("pump_running") else "stopped",
        )
        fault_line = (
            Text("fault  none", style="green")
            if fault is None and not data.get("fault")
            else Text(f"fault  {_fault_text(fault, data.get('fault'))}", style="bold red")
        )
        return Group(
            Panel(
                Group(header, fault_line, values, Text(volumes)),
                title=f"rig {self.state.get('rig_id', '')}".strip(),
            ),
            Panel(link_table(data.get("links") or {}), title="links"),
            Panel(
                Text("\n".join(self.events) if self.events else "none yet"),
                title="events",
            ),
        )


def _fault_text(fault: JsonObject | None, cause: object) -> str:
    if fault is None:
        return f"{cause} (reset with `rig fault reset`)"
    return f"{fault.get('cause')}: {fault.get('message')} (reset with `rig fault reset`)"


def link_table(links: JsonObject) -> Table:
    table = Table(box=None, padding=(0, 1))
    table.add_column("device")
    for counter in LINK_COUNTERS:
        table.add_column(counter.replace("_", " "), justify="right")
    for device, stats in links.items():
        table.add_row(device, *(_counter(stats.get(counter)) for counter in LINK_COUNTERS))
    return table


def _counter(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def sparkline(values: deque[float] | list[float]) -> str:
    """One block character per value, scaled between the window's lowest and highest."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    top = len(SPARK_BLOCKS) - 1
    if span <= 0:
        return SPARK_BLOCKS[0] * len(values)
    return "".join(SPARK_BLOCKS[round((v - low) / span * top)] for v in values)


def describe_event(event: JsonObject) -> str:
    detail = event.get("message", event.get("reason", ""))
    cause = event.get("cause")
    return (
        f"{event.get('kind')}" + (f" {cause}" if cause else "") + (f": {detail}" if detail else "")
    )


class CsvLog:
    """Telemetry rows appended to a CSV file; the header is written when the file is new."""

    def __init__(self, stream: IO[str], *, header: bool) -> None:
        self._writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        self._stream = stream
        if header:
            self._writer.writeheader()

    def write(self, data: JsonObject) -> None:
        self._writer.writerow({key: _csv_value(data.get(key)) for key in CSV_COLUMNS})

    def flush(self) -> None:
        self._stream.flush()


def _csv_value(value: object) -> object:
    return "" if value is None else value


@contextmanager
def open_csv(path: Path | None) -> Iterator[CsvLog | None]:
    if path is None:
        yield None
        return
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as stream:
        log = CsvLog(stream, header=new)
        try:
            yield log
        finally:
            log.flush()


PLAIN_HEADER: Final = (
    f"{'mode':<11}{'P mmHg':>8}{'Q mL/min':>10}{'R mmHg·min/mL':>15}{'saline mL':>11}"
    f"{'contrast mL':>12}  fault"
)


def plain_line(data: JsonObject) -> str:
    return (
        f"{data['mode']:<11}{_fmt(data['pressure_mmhg'], 8, 2)}{_fmt(data['flow_ml_min'], 10, 3)}"
        f"{_fmt(data['resistance_mmhg_min_per_ml'], 15, 1)}{_fmt(data['saline_ml'], 11, 3)}"
        f"{_fmt(data['contrast_ml'], 12, 3)}  {data['fault'] or '-'}"
    )


def _fmt(value: float | None, width: int, decimals: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{decimals}f}"


async def watch(args: argparse.Namespace, target: Target) -> int:
    topics = RigTopics(target.rig_id)
    interactive = sys.stdout.isatty() and not args.json
    min_interval_s = 1.0 / args.hz if args.hz > 0 else 0.0
    loop = asyncio.get_running_loop()
    dashboard = Dashboard()
    shown = 0
    last_s = -min_interval_s
    with open_csv(args.csv) as csv_log, _live(interactive, dashboard) as live:
        async with target.connect() as mqtt:
            telemetry = await mqtt.subscribe(topics.fluid_telemetry)
            events = await mqtt.subscribe(topics.events)
            states = await mqtt.subscribe(topics.state)
            if not interactive and not args.json:
                print(PLAIN_HEADER, flush=True)
            while args.count == 0 or shown < args.count:
                while not states.empty():
                    dashboard.on_state(_json(states.get_nowait().payload))
                while not events.empty():
                    event = _json(events.get_nowait().payload)
                    dashboard.on_event(event)
                    if not interactive and not args.json:
                        print(f"** {describe_event(event)}", flush=True)
                try:
                    async with asyncio.timeout(args.timeout):
                        message = await telemetry.get()
                except TimeoutError:
                    print("no telemetry: is the daemon running?", file=sys.stderr)
                    return EXIT_NO_DAEMON
                data = _json(message.payload)
                dashboard.on_telemetry(data)
                if csv_log is not None:
                    csv_log.write(data)
                now_s = loop.time()
                if now_s - last_s < min_interval_s:
                    continue
                last_s = now_s
                shown += 1
                dashboard.sample()
                if csv_log is not None:
                    csv_log.flush()  # a Ctrl-C or a crash loses at most one update's rows
                if live is not None:
                    live.update(dashboard.render(), refresh=True)
                elif args.json:
                    print(json.dumps(data), flush=True)
                else:
                    print(plain_line(data), flush=True)
    return 0


@contextmanager
def _live(interactive: bool, dashboard: Dashboard) -> Iterator[Live | None]:
    if not interactive:
        yield None
        return
    # Redrawn on each update (`live.update`), not on a timer of rich's own.
    with Live(dashboard.render(), console=Console(), auto_refresh=False) as live:
        yield live


def _json(payload: Any) -> JsonObject:
    data = json.loads(payload or b"{}")
    return data if isinstance(data, dict) else {}
