"""`rig watch`'s dashboard and CSV log, rendered and written without a rig (the system test in
tests/system/test_cli.py runs them against one)."""

from __future__ import annotations

import csv
import io

from rich.console import Console

from rig.cli.watch_cmd import CSV_COLUMNS, CsvLog, Dashboard, sparkline

LINK = {
    "connected": True,
    "rtt_ms": 4.2,
    "frames_tx": 120,
    "frames_rx": 118,
    "crc_errors": 3,
    "timeouts": 1,
    "retries": 2,
    "reconnects": 7,
}


def telemetry(pressure_mmhg: float, **changes: object) -> dict[str, object]:
    return {
        "t_us": 1_000_000,
        "pressure_mmhg": pressure_mmhg,
        "flow_ml_min": 1.0,
        "resistance_mmhg_min_per_ml": 17.5,
        "resistance_rise_mmhg_min_per_ml_per_s": 0.1,
        "mode": "irrigating",
        "pump_running": True,
        "run_volume_ul": 42.0,
        "saline_ml": 0.042,
        "contrast_ml": 0.0,
        "fault": None,
        "links": {"pump": LINK, "board": {**LINK, "reconnects": 0}},
        **changes,
    }


def rendered(dashboard: Dashboard) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None, force_terminal=True)
    console.print(dashboard.render())
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def test_the_dashboard_shows_values_sparklines_state_links_and_events() -> None:
    dashboard = Dashboard()
    dashboard.on_state({"online": True, "rig_id": "sim-1", "state": "ready", "fault": None})
    for pressure in (10.0, 12.0, 14.0, 16.0):
        dashboard.on_telemetry(telemetry(pressure))
        dashboard.sample()
    dashboard.on_event({"kind": "stop", "cause": "operator", "message": "fluid.stop"})
    text = rendered(dashboard)
    assert "rig sim-1" in text and "state ready" in text and "mode irrigating" in text
    assert "pressure" in text and "16.00" in text and "mmHg" in text
    assert "resistance" in text and "17.5" in text and "mmHg·min/mL" in text
    assert "▁▃▆█" in text, "the pressure's sparkline rises with it"
    assert "fault  none" in text
    assert "reconnects" in text and "crc errors" in text
    rows = {line.split()[1]: line.split()[2:-1] for line in text.splitlines() if "4.2" in line}
    assert rows["pump"] == ["yes", "4.2", "120", "118", "3", "1", "2", "7"]
    assert rows["board"][-1] == "0"
    assert "stop operator: fluid.stop" in text


def test_the_dashboard_shows_a_latched_fault_with_how_to_clear_it() -> None:
    dashboard = Dashboard()
    dashboard.on_state(
        {
            "online": True,
            "state": "fault",
            "fault": {"cause": "resistance_rise", "message": "R rose 30/s"},
        }
    )
    dashboard.on_telemetry(telemetry(3.0, fault="resistance_rise", pump_running=False))
    text = rendered(dashboard)
    assert "state fault" in text
    assert "resistance_rise: R rose 30/s (reset with `rig fault reset`)" in text


def test_an_offline_daemon_shows_as_offline() -> None:
    dashboard = Dashboard()
    dashboard.on_state({"online": False})
    assert "state OFFLINE" in rendered(dashboard)


def test_a_sparkline_scales_between_the_windows_extremes() -> None:
    assert sparkline([0.0, 7.0, 3.5]) == "▁█▅"
    assert sparkline([2.0, 2.0]) == "▁▁"
    assert sparkline([]) == ""


def test_the_csv_log_has_a_header_and_one_row_per_telemetry_message() -> None:
    stream = io.StringIO()
    log = CsvLog(stream, header=True)
    log.write(telemetry(12.5))
    log.write(telemetry(13.0, fault="pressure_limit", resistance_mmhg_min_per_ml=None))
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [row["pressure_mmhg"] for row in rows] == ["12.5", "13.0"]
    assert rows[1]["fault"] == "pressure_limit" and rows[1]["resistance_mmhg_min_per_ml"] == ""
    assert "links" not in rows[0]


def test_appending_to_an_existing_csv_writes_no_second_header() -> None:
    stream = io.StringIO()
    CsvLog(stream, header=True).write(telemetry(1.0))
    CsvLog(stream, header=False).write(telemetry(2.0))
    assert stream.getvalue().count("t_us") == 1
