"""MQTT topic names: one place, so the daemon, the CLI, the console and tests agree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RigTopics:
    rig_id: str

    @property
    def base(self) -> str:
        return f"rig/{self.rig_id}"

    @property
    def state(self) -> str:
        """Retained: online flag, fluid mode, latched fault, device links. Last will: offline."""
        return f"{self.base}/state"

    @property
    def fluid_telemetry(self) -> str:
        """Pressure, flow, resistance, volumes, mode and link statistics at telemetry.fluid_hz."""
        return f"{self.base}/telemetry/fluid"

    @property
    def events(self) -> str:
        """Every stop, denial and reset, as it happens (not retained)."""
        return f"{self.base}/events"

    @property
    def video(self) -> str:
        """The scope's view, one JPEG a message (rig/camera/stream.py), while a console holds a
        lease; only the roles that may see video can read it (rig.api.roles.VIDEO_ROLES)."""
        return f"{self.base}/video/view"

    @property
    def video_lease(self) -> str:
        """A console that shows the video publishes here every second; the camera process
        streams for a few seconds after each (nobody watching costs nothing)."""
        return f"{self.base}/video/lease"

    def commands_for(self, role: str) -> str:
        """Requests from `role` (rig.api.roles): MQTT v5 with ResponseTopic and CorrelationData.

        The broker's ACL lets each role publish only here, which is how the daemon knows who
        is asking.
        """
        return f"{self.base}/cmd/{role}"
