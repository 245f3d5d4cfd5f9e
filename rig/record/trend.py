"""The record's trends: the fluid path's figures every `record.trend_period_ms`, journaled
while a procedure is open (the live telemetry at 50 Hz is published, not recorded)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rig.events.models import EventBase, TrendSample
from rig.fluid.controller import FluidController
from rig.record.procedures import ProcedureBook


def trend_sample(book: ProcedureBook, controller: FluidController) -> TrendSample | None:
    """The open procedure's trend sample now, or None when no procedure is open."""
    if book.open is None:
        return None
    saline_ml, contrast_ml = book.volumes_ml()
    pressure = controller.mean_pressure_mmhg
    resistance = controller.last_reading.resistance_mmhg_min_per_ml
    return TrendSample(
        procedure=book.open.procedure,
        pressure_mmhg=None if pressure is None else round(pressure, 2),
        flow_ml_min=round(controller.applied_flow_ml_min, 4),
        resistance_mmhg_min_per_ml=None if resistance is None else round(resistance, 3),
        saline_ml=round(saline_ml, 4),
        contrast_ml=round(contrast_ml, 4),
        mode=controller.setpoint.mode.value,
    )


async def record_trends(
    book: ProcedureBook,
    controller: FluidController,
    record: Callable[[EventBase], EventBase],
    period_s: float,
) -> None:
    while True:
        await asyncio.sleep(period_s)
        sample = trend_sample(book, controller)
        if sample is not None:
            record(sample)
