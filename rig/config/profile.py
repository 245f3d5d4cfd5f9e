"""The whole profile: its sections, and the checks that span them."""

from __future__ import annotations

from pydantic import Field, model_validator

from rig.config.base import Section
from rig.config.bounds import format_number
from rig.config.broker import BrokerConfig
from rig.config.errors import Problem, cross_check
from rig.config.fluid import FluidLoopConfig
from rig.config.limits import LimitsConfig
from rig.config.ports import SimPort
from rig.config.record import RecordConfig
from rig.config.simulator import SimulatorConfig
from rig.config.syringe import SyringeConfig
from rig.config.telemetry import TelemetryConfig
from rig.devices.sections import DevicesConfig


class RigProfile(Section):
    """One rig: its broker, devices, syringe, limits and loop settings."""

    rig_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    devices: DevicesConfig
    syringe: SyringeConfig = Field(default_factory=SyringeConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    fluid: FluidLoopConfig = Field(default_factory=FluidLoopConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    record: RecordConfig = Field(default_factory=RecordConfig)
    simulator: SimulatorConfig | None = None

    @model_validator(mode="after")
    def _sections_agree(self) -> RigProfile:
        p: list[Problem] = []
        if self.fluid.prime_rate_ml_min > self.limits.max_flow_ml_min:
            p.append(
                Problem(
                    "fluid.prime_rate_ml_min",
                    self.fluid.prime_rate_ml_min,
                    "must not exceed limits.max_flow_ml_min "
                    f"({format_number(self.limits.max_flow_ml_min)} mL/min)",
                )
            )
        if (
            self.fluid.nominal_resistance_mmhg_min_per_ml
            >= self.limits.max_resistance_mmhg_min_per_ml
        ):
            p.append(
                Problem(
                    "fluid.nominal_resistance_mmhg_min_per_ml",
                    self.fluid.nominal_resistance_mmhg_min_per_ml,
                    "must be below limits.max_resistance_mmhg_min_per_ml "
                    f"({format_number(self.limits.max_resistance_mmhg_min_per_ml)}): a nominal "
                    "duct is not one the resistance stop stops on",
                )
            )
        for cap in ("saline_volume_cap_ml", "contrast_volume_cap_ml"):
            cap_ml = getattr(self.limits, cap)
            if cap_ml > self.syringe.volume_ml:
                p.append(
                    Problem(
                        f"limits.{cap}",
                        cap_ml,
                        f"at most syringe.volume_ml ({format_number(self.syringe.volume_ml)} mL): "
                        "the rig has no refill, so a cap above one syringe can never act",
                    )
                )
        for name, section in self.devices.sections().items():
            if self.simulator is None and isinstance(section.port, SimPort):
                p.append(
                    Problem(
                        f"devices.{name}.port",
                        {"sim": section.port.sim},
                        "a sim port needs a [simulator] section",
                    )
                )
            p.extend(section.agrees_with(self))
        cross_check(p)
        return self
