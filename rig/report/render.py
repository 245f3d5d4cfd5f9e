"""The report as pages: one self-contained HTML file and a PDF, both from matplotlib.

The plots are drawn once per format (PNG for the HTML, vector for the PDF). The HTML carries its
images inline (base64), so it is one file that can be mailed or filed; the PDF is A4.
"""

from __future__ import annotations

import base64
import html
import io
import math
import textwrap
from pathlib import Path
from typing import cast

import matplotlib

matplotlib.use("Agg")  # no display on a rig or in CI; set before pyplot is imported

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from rig.report.model import Report, wall_clock

A4_IN = (8.27, 11.69)
TIMELINE_ROWS_PER_PAGE = 58
TIMELINE_WIDTH = 110
"""Characters per timeline line on an A4 page at 6.5 pt monospace; longer rows wrap."""
LATCHED_COLOUR = "#c0392b"
STOP_COLOUR = "#7f8c8d"
RESET_COLOUR = "#27ae60"
SNAPSHOT_COLOUR = "#2471a3"
BASKET_COLOUR = "#8e44ad"


def write_report(report: Report, media_root: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write `report.html` and `report.pdf` into `out_dir`; return their paths. Snapshot paths
    are taken relative to `media_root` (the record directory)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, pdf_path = out_dir / "report.html", out_dir / "report.pdf"
    html_path.write_text(_html(report, media_root), encoding="utf-8")
    _pdf(report, media_root, pdf_path)
    return html_path, pdf_path


def plot_trends(report: Report, figure: Figure, *, top: float = 0.93) -> None:
    """Pressure, flow, resistance and volumes over time, with every stop, reset and snapshot
    marked: a latched stop (an alarm) in red, an ordinary stop in grey."""
    s = report.series
    axes = cast(
        "list[Axes]",
        list(figure.subplots(4, 1, sharex=True, gridspec_kw={"top": top, "bottom": 0.06})),
    )
    panels: list[tuple[Axes, str, list[list[float]], list[str], str | None]] = [
        (axes[0], "pressure\nmmHg", [s.pressure_mmhg], ["pressure"], "pressure_mmhg"),
        (axes[1], "flow\nmL/min", [s.flow_ml_min], ["flow"], "flow_ml_min"),
        (
            axes[2],
            "resistance\nmmHg·min/mL",
            [s.resistance_mmhg_min_per_ml],
            ["resistance"],
            "resistance_mmhg_min_per_ml",
        ),
        (axes[3], "volume\nmL", [s.saline_ml, s.contrast_ml], ["saline", "contrast"], None),
    ]
    for ax, label, columns, names, stop_figure in panels:
        for column, name in zip(columns, names, strict=True):
            ax.plot(s.t_s, column, linewidth=1.2, label=name)
        for stop in report.stops if stop_figure is not None else []:
            if stop_figure in stop.figures:
                colour = LATCHED_COLOUR if stop.latched else STOP_COLOUR
                ax.plot(stop.t_s, stop.figures[stop_figure], "x", color=colour, markersize=7)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, linewidth=0.3, alpha=0.5)
        for stop in report.stops:
            colour = LATCHED_COLOUR if stop.latched else STOP_COLOUR
            ax.axvline(stop.t_s, color=colour, linestyle="--", linewidth=1.0)
        for reset in report.resets:
            ax.axvline(reset.t_s, color=RESET_COLOUR, linestyle=":", linewidth=1.0)
        for snapshot in report.snapshots:
            ax.axvline(snapshot.t_s, color=SNAPSHOT_COLOUR, linestyle="-.", linewidth=0.8)
        for mark in report.basket:
            ax.axvline(mark.t_s, color=BASKET_COLOUR, linestyle=(0, (1, 2)), linewidth=1.2)
    axes[3].legend(fontsize=7, loc="upper left")
    latched = [(m.t_s, m.label.replace("_", " ")) for m in report.stops if m.latched]
    for ax, colour, notes in (
        (axes[0], LATCHED_COLOUR, latched),
        (axes[3], SNAPSHOT_COLOUR, [(shot.t_s, shot.note) for shot in report.snapshots]),
        (axes[1], BASKET_COLOUR, [(m.t_s, m.label) for m in report.basket]),
    ):
        for t_s, note in notes:
            ax.annotate(
                note,
                (t_s, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=6,
                color=colour,
                va="top",
                ha="right",
            )
    axes[3].set_xlabel("seconds from the procedure's start", fontsize=8)
    figure.text(
        0.5,
        top + 0.01,
        "red dashed: stop latched as a fault (x: its figures); grey dashed: stop; "
        "green dotted: reset; blue: snapshot; purple: the basket's grasp or halt",
        fontsize=7,
        ha="center",
    )


def summary_lines(report: Report) -> list[str]:
    peak = "-" if report.max_pressure_mmhg is None else f"{report.max_pressure_mmhg:.1f} mmHg"
    end = "still open" if report.stopped_wall_time is None else wall_clock(report.stopped_wall_time)
    return [
        f"Procedure {report.procedure}" + (f"   ref {report.ref}" if report.ref else ""),
        f"Rig {report.rig_id}   started {wall_clock(report.started_wall_time)}   "
        f"ended {end}   duration {_duration(report.duration_s)}",
        f"Saline {report.saline_ml:.2f} mL   contrast {report.contrast_ml:.2f} mL   "
        f"maximum pressure {peak}",
        f"Stops {len(report.stops)} (latched {sum(s.latched for s in report.stops)})   "
        f"alarms {len(report.alarms)}   resets {len(report.resets)}   "
        f"snapshots {len(report.snapshots)}   basket grasps "
        f"{sum(m.label != 'basket fault' for m in report.basket)}   daemon restarts {report.restarts}",
        f"Syringe {report.syringe}",
    ]


# -- HTML -------------------------------------------------------------------------------------


def _html(report: Report, media_root: Path) -> str:
    e = html.escape
    figure = plt.figure(figsize=(11, 8))
    plot_trends(report, figure)
    plot = _png_base64(figure)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Procedure {e(report.procedure)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
        "font-size:13px;text-align:left;vertical-align:top}.latched{color:#c0392b;"
        "font-weight:bold}img.plot{width:100%}figure{display:inline-block;margin:1em}"
        "</style></head><body>",
        f"<h1>Procedure {e(report.procedure)}</h1>",
        "<section id='summary'>",
        *(f"<p>{e(line)}</p>" for line in summary_lines(report)[1:]),
        "</section>",
        f"<h2>Trends</h2><img class='plot' id='trends' alt='trends' src='data:image/png;base64,{plot}'>",
        "<h2>Alarms</h2><table id='alarms'><tr><th>raised (s)</th><th>priority</th>"
        "<th>alarm</th><th>acknowledged (s)</th><th>cleared (s)</th></tr>",
    ]
    for alarm in report.alarms:
        css = " class='latched'" if alarm.priority == "high" else ""
        parts.append(
            f"<tr{css}><td>{alarm.t_s:.1f}</td><td>{e(alarm.priority.upper())}</td>"
            f"<td>{e(alarm.message)}</td><td>{_seconds(alarm.acknowledged_t_s)}"
            f"{' by the ' + e(alarm.acknowledged_by) if alarm.acknowledged_by else ''}</td>"
            f"<td>{_seconds(alarm.cleared_t_s)}</td></tr>"
        )
    parts.append("</table><h2>Stops</h2><table id='stops'><tr><th>t (s)</th><th>what</th></tr>")
    for mark in report.stops:
        css = " class='latched'" if mark.latched else ""
        parts.append(f"<tr{css}><td>{mark.t_s:.1f}</td><td>{e(mark.detail)}</td></tr>")
    parts.append("</table><h2>Snapshots</h2><div id='snapshots'>")
    for snapshot in report.snapshots:
        image = _snapshot_file(media_root, snapshot.path)
        img = (
            f"<img width='480' alt='{e(snapshot.note)}' src='data:image/png;base64,"
            f"{base64.b64encode(image.read_bytes()).decode()}'>"
            if image is not None
            else f"<p>(image missing: {e(snapshot.path)})</p>"
        )
        parts.append(
            f"<figure>{img}<figcaption><b>{e(snapshot.note)}</b> at {snapshot.t_s:.1f} s: "
            f"{e(snapshot.figures)}</figcaption></figure>"
        )
    parts.append("</div><h2>Timeline</h2><table id='timeline'>")
    parts.append("<tr><th>t (s)</th><th>time</th><th>event</th><th>what</th></tr>")
    for row in report.timeline:
        parts.append(
            f"<tr><td>{row.t_s:.1f}</td><td>{e(wall_clock(row.wall_time))}</td>"
            f"<td>{e(row.kind)}</td><td>{e(row.text)}</td></tr>"
        )
    parts.append("</table>")
    if report.video_segments:
        parts.append("<h2>Video segments</h2><ul>")
        parts.extend(f"<li>{e(path)}</li>" for path in report.video_segments)
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _png_base64(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


# -- PDF --------------------------------------------------------------------------------------


def _pdf(report: Report, media_root: Path, path: Path) -> None:
    with PdfPages(path) as pdf:
        first = plt.figure(figsize=A4_IN)
        for row, line in enumerate(summary_lines(report)):
            first.text(
                0.05,
                0.965 - row * 0.027,
                line,
                fontsize=12 if row == 0 else 8,
                weight="bold" if row == 0 else "normal",
            )
        plot_trends(report, first, top=0.80)
        pdf.savefig(first)
        plt.close(first)
        rows = [
            line
            for row in report.timeline
            for line in textwrap.wrap(
                f"{row.t_s:8.1f} s  {row.text}", TIMELINE_WIDTH, subsequent_indent=" " * 12
            )
        ]
        for start in range(0, max(len(rows), 1), TIMELINE_ROWS_PER_PAGE):
            page = plt.figure(figsize=A4_IN)
            page.text(0.05, 0.96, "Timeline", fontsize=12, weight="bold")
            for index, line in enumerate(rows[start : start + TIMELINE_ROWS_PER_PAGE]):
                page.text(0.05, 0.93 - index * 0.0155, line, fontsize=6.5, family="monospace")
            pdf.savefig(page)
            plt.close(page)
        for snapshot in report.snapshots:
            page = plt.figure(figsize=A4_IN)
            image = _snapshot_file(media_root, snapshot.path)
            ax = page.add_axes((0.08, 0.3, 0.84, 0.6))
            ax.set_axis_off()
            if image is not None:
                ax.imshow(mpimg.imread(image))
            else:
                ax.text(0.5, 0.5, f"image missing: {snapshot.path}", ha="center")
            page.text(0.08, 0.25, f"Snapshot \u201c{snapshot.note}\u201d", fontsize=12)
            page.text(0.08, 0.22, f"at {snapshot.t_s:.1f} s: {snapshot.figures}", fontsize=8)
            pdf.savefig(page)
            plt.close(page)
        info = pdf.infodict()
        info["Title"] = f"Procedure {report.procedure}"
        info["Subject"] = "Ductoscopy rig procedure record"


def _snapshot_file(media_root: Path, relative: str) -> Path | None:
    """The snapshot's file, if it exists inside the record directory (a path from the journal
    never reads outside it)."""
    root = media_root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _seconds(t_s: float | None) -> str:
    return "-" if t_s is None else f"{t_s:.1f}"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"
