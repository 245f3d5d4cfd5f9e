"""Where the interlock's `video_live` fact comes from, in one place the camera work replaces.

Closing the basket needs live video (rig/safety/rules.py, VIDEO_LIVE). The camera is not in the
daemon yet (its capture process is the camera issue's), so until it is, this stands in for it:
on a simulator profile the simulated scope's camera is taken as live (the simulator renders its
scene whenever it runs); on a bench profile nothing says so, and the fact is None, which the
rule reads as "no live video": the basket does not close. A test flips `live` to see the rule
refuse. When the camera lands, the daemon gives the interlock the camera's frame-age check
instead of this object.
"""

from __future__ import annotations

from rig.config import RigProfile


class StandInVideoFact:
    def __init__(self, profile: RigProfile) -> None:
        self.live: bool | None = True if profile.simulator is not None else None

    def __call__(self) -> bool | None:
        return self.live
