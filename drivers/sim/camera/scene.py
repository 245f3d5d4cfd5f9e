"""The view from the scope tip: a duct tunnel, a papilloma, blood haze, the basket, the bundle.

`DuctScene.render(view)` draws one BGR frame (uint8, the camera's format) from a small state:
how deep the tip is, the LED level, whether the basket is out. The haze of blood and debris is
the one state that integrates over time: `step(dt_s, saline_flowing=...)` clears it while saline
flows and lets it cloud back when the flow stops. Everything random comes from the seed, so one
seed and one sequence of calls give the same frames, bit for bit.

How a frame is made (docs/camera.md, "The simulated scene"):
- The tunnel: the tip looks along the axis of a tube of radius R. A pixel at radius r from the
  vanishing point sees the wall at the distance z = f·R / r ahead, at the pixel's angle. The
  wall's texture is an unrolled sheet (angle x depth along the duct) made once from the seed;
  one `cv2.remap` per frame samples it at (angle, tip depth + z), and a fixed shading map
  darkens the wall with distance (the light comes from the tip). Branches are dark openings in
  the sheet, so they come into view and grow as the tip approaches, like the wall does.
- The papilloma: lobes of red drawn at its projected position and size (f·size / distance),
  shaded by the same falloff; nothing once the tip is past it.
- Haze: a reddish-brown veil and drifting debris in proportion to the haze level.
- The basket: wire loops out of the working channel, near the tip, so bright.
- The bundle: the scene times the honeycomb's transmission and the LED level (`bundle.py`).

Cost: all on uint8 and only inside the field's bounding box (outside it the frame stays
black; at 1080p the box is half the frame). The wall and the papilloma depend on the tip's depth
alone: a remap, a shading multiply and the lesion's draw calls when the depth changes, nothing
while the tip stays put. Then per frame one blend (the haze), the debris, the basket and one
multiply (the bundle and the LED). At 1080p: about 3 ms a frame with the tip still, 14 with it
moving (it was 15 to 24 ms when every frame was drawn whole).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from drivers.sim.camera.bundle import BundleParams, FibreBundle

Frame = npt.NDArray[np.uint8]

_SHIFT = 4  # subpixel drawing: 1/16 px
_SCALE = 1 << _SHIFT
_WALL_BGR = (200.0, 208.0, 236.0)  # white with a pink cast, as the duct's lining looks
_HAZE_BGR = (40, 55, 125)  # diluted blood
_DEBRIS_BGR = (25, 30, 90)
_WIRE_BGR = (215, 215, 205)  # nitinol, lit from the tip


@dataclass(frozen=True, slots=True)
class DuctSceneParams:
    width_px: int = 640
    height_px: int = 480
    duct_radius_mm: float = 0.9
    """Radius of the duct held open by the saline (hydro-dilation)."""
    duct_length_mm: float = 90.0
    """Length of the wall texture: the tip's depth plus what it sees ahead stays within it."""
    field_half_angle_deg: float = 40.0
    """Half the scope's field of view: sets the focal length against the field's radius."""
    light_falloff_mm: float = 2.2
    """Distance ahead at which the tip's light on the wall has fallen to half."""
    papilloma_depth_mm: float = 32.0
    """Depth along the duct of the papilloma's centre."""
    papilloma_radius_mm: float = 0.45
    papilloma_angle_deg: float = 200.0
    """Where round the wall the papilloma grows (0 = right of the image, 90 = down)."""
    branch_depths_mm: tuple[float, ...] = (18.0, 45.0)
    haze_clear_s: float = 1.5
    """Time constant of the haze clearing while saline flows."""
    haze_cloud_s: float = 6.0
    """Time constant of the haze building up once the flow stops."""
    initial_haze: float = 0.7
    debris_particles: int = 60
    exposure_gain: float = 1.8
    """Camera gain: the bundle passes about half the light; bright cores may saturate."""
    honeycomb: bool = True
    """False renders the same optics without cores: the reference for honeycomb removal."""
    bundle: BundleParams = field(default_factory=BundleParams)


@dataclass(frozen=True, slots=True)
class View:
    """What the scene is asked to show: the scope's state as the simulator's world has it."""

    depth_mm: float
    """How far the tip is along the duct from the nipple pore."""
    led_level: float = 1.0
    """The LED's light level, 0 (off) to 1 (full)."""
    basket_deployed: bool = False
    lesion_present: bool = True
    """False once the basket has retrieved the papilloma: the wall where it grew is bare."""


@dataclass(frozen=True, slots=True)
class PapillomaInView:
    """Where the papilloma is drawn in a frame: for tests that measure its edge."""

    centre_x_px: float
    centre_y_px: float
    radius_px: float


class DuctScene:
    """Renders the scope's view of a duct; deterministic per seed. Not thread-safe."""

    def __init__(self, seed: int, params: DuctSceneParams | None = None) -> None:
        self.params = p = params or DuctSceneParams()
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.bundle = FibreBundle.build(p.width_px, p.height_px, seed, p.bundle)
        self._optics = self.bundle.transmission if p.honeycomb else self.bundle.field_factor
        self.focal_px = self.bundle.field_radius_px / math.tan(math.radians(p.field_half_angle_deg))
        self._texture_px_per_mm = 24.0
        self._texture = _wall_texture(rng, p, self._texture_px_per_mm)
        # Only the field's bounding box is drawn: outside it the optics pass nothing, so the
        # frame stays black there (at 1080p the box is half the frame).
        rows, cols = np.nonzero(self._optics[:, :, 0])
        self._box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        self._origin_px = (float(cols.min()), float(rows.min()))
        self._map_x, self._map_z_mm, self._shade = _tunnel_maps(self, p, self._box)
        self._map_y = np.empty_like(self._map_z_mm)
        self._lobes = _papilloma_lobes(rng)
        self._debris = rng.uniform(0.0, 1.0, (p.debris_particles, 4)).astype(np.float64)
        self._frame = np.zeros((p.height_px, p.width_px, 3), np.uint8)
        self._inside = self._frame[self._box]
        self._haze_image = np.empty_like(self._inside)
        self._haze_image[:] = _HAZE_BGR
        self._scenery = np.empty_like(self._inside)
        self._scenery_drawn: tuple[float, bool] | None = None
        """The tip's depth and the lesion's presence `_scenery` was drawn for: the wall and the
        papilloma depend on them alone, so a tip that stays put costs no remap."""
        self.haze = p.initial_haze
        """Blood and debris in front of the tip, 0 (clear) to 1 (nothing visible)."""
        self.time_s = 0.0

    def step(self, dt_s: float, *, saline_flowing: bool) -> None:
        """Advance the haze and the debris by `dt_s`: clearing with flow, clouding without."""
        if dt_s < 0:
            raise ValueError(f"dt_s = {dt_s}: expected a duration of 0 s or more")
        p = self.params
        if saline_flowing:
            self.haze *= math.exp(-dt_s / p.haze_clear_s)
        else:
            self.haze = 1.0 - (1.0 - self.haze) * math.exp(-dt_s / p.haze_cloud_s)
        # Debris drifts towards the tip with the saline, or settles slowly without it.
        speed = 0.25 if saline_flowing else 0.03
        self._debris[:, 1] = (self._debris[:, 1] + speed * dt_s * (0.5 + self._debris[:, 3])) % 1.0
        self.time_s += dt_s

    def papilloma_in_view(self, view: View) -> PapillomaInView | None:
        """The papilloma's projected disc, or None when it is behind the tip or too far to see."""
        p = self.params
        ahead_mm = p.papilloma_depth_mm - view.depth_mm
        if ahead_mm < 0.4 or ahead_mm > p.duct_length_mm:
            return None
        angle = math.radians(p.papilloma_angle_deg)
        # Its centre sits on the wall, pushed into the lumen by its own radius.
        off_axis_mm = p.duct_radius_mm - 0.8 * p.papilloma_radius_mm
        r_px = self.focal_px * off_axis_mm / ahead_mm
        return PapillomaInView(
            centre_x_px=self.bundle.centre_x_px + r_px * math.cos(angle),
            centre_y_px=self.bundle.centre_y_px + r_px * math.sin(angle),
            radius_px=self.focal_px * p.papilloma_radius_mm / ahead_mm,
        )

    def render(self, view: View) -> Frame:
        """One BGR frame of the view. The returned array is reused by the next call: copy to keep."""
        if not 0.0 <= view.led_level <= 1.0:
            raise ValueError(f"led_level = {view.led_level}: expected 0 to 1")
        p = self.params
        if (view.depth_mm, view.lesion_present) != self._scenery_drawn:
            self._draw_scenery(view)
        inside = self._inside
        if self.haze > 0.0:
            self._draw_haze(inside)
        else:
            np.copyto(inside, self._scenery)
        if view.basket_deployed:
            self._draw_basket(inside)
        cv2.multiply(
            inside,
            self._optics[self._box],
            dst=inside,
            scale=p.exposure_gain * view.led_level / 255.0,
        )
        return self._frame

    def _draw_scenery(self, view: View) -> None:
        """The wall seen from the tip's depth, shaded by distance, and the papilloma."""
        p = self.params
        scenery = self._scenery
        np.add(self._map_z_mm, view.depth_mm, out=self._map_y)
        self._map_y *= self._texture_px_per_mm
        cv2.remap(
            self._texture,
            self._map_x,
            self._map_y,
            cv2.INTER_LINEAR,
            dst=scenery,
            borderMode=cv2.BORDER_WRAP,
        )
        cv2.multiply(scenery, self._shade, dst=scenery, scale=1.0 / 255.0)
        papilloma = self.papilloma_in_view(view) if view.lesion_present else None
        if papilloma is not None:
            self._draw_papilloma(scenery, papilloma, p.papilloma_depth_mm - view.depth_mm)
        self._scenery_drawn = (view.depth_mm, view.lesion_present)

    def _draw_papilloma(self, frame: Frame, where: PapillomaInView, ahead_mm: float) -> None:
        light = _light(ahead_mm, self.params.light_falloff_mm)
        a = where.radius_px
        # A dark base first, so the gaps between the lobes read as the lesion's clefts.
        base = tuple(c * light for c in (35.0, 40.0, 120.0))
        _circle(frame, self._point(where.centre_x_px, where.centre_y_px), a, base)
        for dx, dy, size, tone in self._lobes:
            x, y, r = where.centre_x_px + dx * a, where.centre_y_px + dy * a, size * a
            colour = (light * (55 + 40 * tone), light * (60 + 45 * tone), light * (165 + 75 * tone))
            _circle(frame, self._point(x, y), r, colour)
            if r > 2.5:
                glint = (light * 150, light * 160, light * 245)
                _circle(frame, self._point(x - 0.3 * r, y - 0.3 * r), 0.3 * r, glint)

    def _draw_haze(self, frame: Frame) -> None:
        """The scenery seen through the haze, into `frame`."""
        veil = 0.85 * self.haze
        cv2.addWeighted(self._scenery, 1.0 - veil, self._haze_image, veil, 0.0, dst=frame)
        b = self.bundle
        shown = round(self.haze * len(self._debris))
        for u, v, size, _speed in self._debris[:shown]:
            angle = 2.0 * math.pi * u
            r = b.field_radius_px * math.sqrt(v)
            radius = 1.5 + 6.0 * size * (0.3 + v)  # nearer the rim is nearer the tip: bigger
            centre = self._point(
                b.centre_x_px + r * math.cos(angle), b.centre_y_px + r * math.sin(angle)
            )
            _circle(frame, centre, radius, _DEBRIS_BGR)

    def _point(self, x_px: float, y_px: float) -> tuple[int, int]:
        """A point of the frame in the field's box, in the drawing calls' fixed point."""
        x0, y0 = self._origin_px
        return round((x_px - x0) * _SCALE), round((y_px - y0) * _SCALE)

    def _draw_basket(self, frame: Frame) -> None:
        """Four wire loops opened from the working channel at the lower right of the field."""
        b = self.bundle
        origin_x = b.centre_x_px + 0.55 * b.field_radius_px
        origin_y = b.centre_y_px + 0.55 * b.field_radius_px
        towards = math.degrees(math.atan2(b.centre_y_px - origin_y, b.centre_x_px - origin_x))
        length = 0.45 * b.field_radius_px
        mid_x = origin_x + 0.5 * length * math.cos(math.radians(towards))
        mid_y = origin_y + 0.5 * length * math.sin(math.radians(towards))
        thickness = max(1, round(b.field_radius_px / 110))
        for loop in range(4):
            # Loops at 45° round the basket's axis: their projections are ellipses of
            # decreasing width.
            width = 0.5 * length * abs(math.cos(math.radians(22.5 + 45.0 * loop)))
            cv2.ellipse(
                frame,
                self._point(mid_x, mid_y),
                (round(0.5 * length * _SCALE), max(1, round(width * _SCALE))),
                towards,
                0,
                360,
                _WIRE_BGR,
                thickness,
                cv2.LINE_AA,
                _SHIFT,
            )
        sheath_x = origin_x + 0.2 * length * math.cos(math.radians(towards + 180))
        sheath_y = origin_y + 0.2 * length * math.sin(math.radians(towards + 180))
        cv2.line(
            frame,
            self._point(sheath_x, sheath_y),
            self._point(origin_x, origin_y),
            (120, 125, 120),
            3 * thickness,
            cv2.LINE_AA,
            _SHIFT,
        )


def _light(distance_mm: float, falloff_mm: float) -> float:
    return 1.0 / (1.0 + (distance_mm / falloff_mm) ** 2)


def _circle(frame: Frame, centre: tuple[int, int], radius: float, bgr: tuple[float, ...]) -> None:
    cv2.circle(
        frame,
        centre,
        max(1, round(radius * _SCALE)),
        bgr,
        thickness=-1,
        lineType=cv2.LINE_AA,
        shift=_SHIFT,
    )


def _tunnel_maps(
    scene: DuctScene, p: DuctSceneParams, box: tuple[slice, slice]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], Frame]:
    """Per pixel of the box (rows, columns): the texture column (angle), the distance ahead of
    the wall seen, its shading."""
    b = scene.bundle
    rows, cols = box
    yy, xx = np.mgrid[rows, cols].astype(np.float64)
    dx, dy = xx - b.centre_x_px, yy - b.centre_y_px
    r_px = np.maximum(np.hypot(dx, dy), 1.0)
    angle = np.arctan2(dy, dx) % (2.0 * math.pi)
    texture_width = scene._texture.shape[1]
    map_x = (angle / (2.0 * math.pi) * texture_width).astype(np.float32)
    # Beyond 40 mm the wall is dark anyway; capping keeps the map inside the texture.
    ahead_mm = np.minimum(scene.focal_px * p.duct_radius_mm / r_px, 40.0)
    shade = 255.0 / (1.0 + (ahead_mm / p.light_falloff_mm) ** 2)
    shade3 = np.repeat(np.round(shade).astype(np.uint8)[:, :, None], 3, axis=2)
    return map_x, ahead_mm.astype(np.float32), np.ascontiguousarray(shade3)


def _wall_texture(rng: np.random.Generator, p: DuctSceneParams, px_per_mm: float) -> Frame:
    """The duct's lining unrolled: columns go round the wall, rows along the duct."""
    width = 512
    height = round(p.duct_length_mm * px_per_mm)
    mottle = _periodic_noise(rng, height, width, cutoff=0.02)
    fine = _periodic_noise(rng, height, width, cutoff=0.15)
    base = np.array(_WALL_BGR, np.float64)
    tone = 1.0 + 0.13 * mottle + 0.06 * fine
    texture = np.clip(tone[:, :, None] * base[None, None, :], 0, 255).astype(np.uint8)
    # Capillaries: thin red threads running mostly along the duct.
    for _ in range(70):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        points = []
        heading = rng.normal(math.pi / 2, 0.5)
        for _ in range(int(rng.integers(6, 16))):
            points.append((round(x * _SCALE), round(y * _SCALE)))
            heading += rng.normal(0.0, 0.35)
            x += 6.0 * math.cos(heading)
            y += 6.0 * math.sin(heading)
        colour = (120.0, 125.0, float(rng.uniform(200, 230)))
        cv2.polylines(texture, [np.array(points, np.int32)], False, colour, 1, cv2.LINE_AA, _SHIFT)
    # Branches: dark openings in the wall, a little wider round than along.
    for depth_mm in p.branch_depths_mm:
        column = float(rng.uniform(0, width))
        row = depth_mm * px_per_mm
        half_round = 0.55 / (2.0 * math.pi * p.duct_radius_mm) * width
        half_along = 0.45 * px_per_mm
        for k, level in ((1.0, 90.0), (0.75, 45.0), (0.45, 12.0)):
            cv2.ellipse(
                texture,
                (round(column * _SCALE), round(row * _SCALE)),
                (round(k * half_round * _SCALE), round(k * half_along * _SCALE)),
                0,
                0,
                360,
                (level, level, level * 1.3),
                -1,
                cv2.LINE_AA,
                _SHIFT,
            )
    blurred: Frame = cv2.GaussianBlur(texture, (0, 0), 0.8).astype(np.uint8)
    return blurred


def _papilloma_lobes(rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    """A raspberry: lobes (offset x, offset y, radius, tone), in units of the lesion's radius."""
    lobes = []
    for _ in range(38):
        r = 0.78 * math.sqrt(float(rng.uniform(0, 1)))
        angle = float(rng.uniform(0, 2 * math.pi))
        lobes.append(
            (
                r * math.cos(angle),
                r * math.sin(angle),
                float(rng.uniform(0.17, 0.26)),
                float(rng.uniform(0, 1)),
            )
        )
    return lobes


def _periodic_noise(
    rng: np.random.Generator, height: int, width: int, cutoff: float
) -> npt.NDArray[np.float64]:
    """Smooth noise of unit spread that wraps round both edges (made in the Fourier domain)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    envelope = np.exp(-(fx * fx + fy * fy) / (2.0 * cutoff * cutoff))
    spectrum = envelope * (rng.normal(size=envelope.shape) + 1j * rng.normal(size=envelope.shape))
    noise: npt.NDArray[np.float64] = np.fft.irfft2(spectrum, s=(height, width))
    normalised: npt.NDArray[np.float64] = (noise - noise.mean()) / (noise.std() + 1e-12)
    return normalised
