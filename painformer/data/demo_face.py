"""Drawing the demo dataset's faces: RGB frames with sensor noise and the matching thermal frames.

A face is a set of anti-aliased OpenCV primitives drawn with sub-pixel precision. The parts that
do not move with the expression (body, hair, ears, face outline) are drawn once per subject;
the expressive parts (brows, eyes, nose, cheeks, mouth) are drawn per frame at the frame's
pain-expression intensity, then the whole head moves. The thermal frame draws the same geometry
with a "temperature" per part (``THERMAL_LEVELS``) and colours it with an ironbow palette.

The profile and plan arguments are ``painformer.data.demo``'s ``SubjectProfile`` and ``SamplePlan``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from painformer.data.demo import SamplePlan, SubjectProfile

FRAME_SIZE = 256
_SHIFT = 4  # OpenCV fixed-point drawing: 4 fractional bits give sub-pixel head motion.
_SCALE = float(1 << _SHIFT)

# Thermal "temperatures" (0 cold .. 1 hot) of every drawn part: warm eye corners, forehead
# and mouth, cool nose, hair and background. Mixed pairs interpolate with the expression.
THERMAL_LEVELS = {
    "background": 0.08,
    "clothes": 0.28,
    "neck": 0.6,
    "hair": 0.2,
    "ear": 0.46,
    "skin": 0.58,
    "forehead": 0.7,
    "nose_region": 0.38,
    "cheek": 0.56,
    "cheek_pain": 0.64,
    "fold": 0.58,
    "fold_pain": 0.62,
    "socket": 0.72,
    "socket_pain": 0.76,
    "sclera": 0.84,
    "iris": 0.82,
    "pupil": 0.82,
    "lid": 0.76,
    "canthus": 0.98,
    "brow": 0.5,
    "wrinkle": 0.6,
    "nose_line": 0.42,
    "nostril": 0.5,
    "lip": 0.78,
    "mouth_inner": 0.96,
    "teeth": 0.72,
}

# Ironbow-like false colour: black -> indigo -> magenta -> orange -> yellow -> white.
_IRONBOW_STOPS = (
    (0.0, (0, 0, 8)),
    (0.18, (40, 0, 110)),
    (0.4, (150, 10, 140)),
    (0.6, (225, 70, 30)),
    (0.8, (252, 170, 0)),
    (0.93, (255, 230, 90)),
    (1.0, (255, 255, 230)),
)


def ironbow_lut() -> np.ndarray:
    """(256, 3) uint8 RGB palette used to colour the thermal images."""
    x = np.linspace(0.0, 1.0, 256)
    stops = np.array([s for s, _ in _IRONBOW_STOPS])
    colours = np.array([c for _, c in _IRONBOW_STOPS], dtype=float)
    return np.stack([np.interp(x, stops, colours[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


def visible_palette(profile: SubjectProfile) -> dict[str, np.ndarray]:
    """RGB colour of every face part for ``profile``."""
    skin = np.array(profile.skin)
    hair = np.array(profile.hair)
    dark = np.array((60.0, 30.0, 30.0))
    return {
        "clothes": np.array(profile.clothes),
        "neck": skin * 0.85,
        "hair": hair,
        "ear": skin * 0.9,
        "skin": skin,
        "forehead": skin,
        "nose_region": skin,
        "cheek": skin * 0.97 + np.array((220.0, 100.0, 100.0)) * 0.03,
        "cheek_pain": skin * 0.8 + np.array((220.0, 90.0, 90.0)) * 0.2,
        "fold": skin * 0.9 + dark * 0.1,
        "fold_pain": skin * 0.45 + dark * 0.55,
        "socket": skin * 0.9,
        "socket_pain": skin * 0.72,
        "sclera": np.array((245.0, 243.0, 238.0)),
        "iris": np.array(profile.iris),
        "pupil": np.array((15.0, 12.0, 12.0)),
        "lid": skin * 0.35,
        "canthus": skin * 0.8 + np.array((230.0, 120.0, 120.0)) * 0.2,
        "brow": hair * 0.7,
        "wrinkle": skin * 0.45 + dark * 0.55,
        "nose_line": skin * 0.78,
        "nostril": skin * 0.45,
        "lip": skin * 0.55 + np.array((190.0, 70.0, 80.0)) * 0.45,
        "mouth_inner": np.array((70.0, 20.0, 25.0)),
        "teeth": np.array((240.0, 236.0, 222.0)),
    }


def thermal_palette() -> dict[str, np.ndarray]:
    return {name: np.full(3, 255.0 * level) for name, level in THERMAL_LEVELS.items()}


def _pt(x: float, y: float) -> tuple[int, int]:
    return round(x * _SCALE), round(y * _SCALE)


def _ellipse(
    img: np.ndarray,
    centre: tuple[float, float],
    axes: tuple[float, float],
    colour: np.ndarray,
    *,
    start: float = 0.0,
    end: float = 360.0,
    thickness: int = -1,
) -> None:
    axes_px = _pt(max(axes[0], 0.5), max(axes[1], 0.5))
    cv2.ellipse(
        img, _pt(*centre), axes_px, 0.0, start, end, tuple(float(c) for c in colour), thickness, cv2.LINE_AA, _SHIFT
    )


def _line(img: np.ndarray, points: list[tuple[float, float]], colour: np.ndarray, thickness: int) -> None:
    poly = np.array([_pt(x, y) for x, y in points], dtype=np.int32)
    cv2.polylines(img, [poly], False, tuple(float(c) for c in colour), thickness, cv2.LINE_AA, _SHIFT)


def _mix(palette: dict[str, np.ndarray], neutral: str, pained: str, amount: float) -> np.ndarray:
    amount = float(np.clip(amount, 0.0, 1.0))
    return palette[neutral] * (1.0 - amount) + palette[pained] * amount


def draw_head(canvas: np.ndarray, p: SubjectProfile, palette: dict[str, np.ndarray]) -> None:
    """Draw the parts that do not move with the expression (body, hair, ears, face, nose region)."""
    cx, cy, a, b = p.cx, p.cy, p.face_w, p.face_h
    _ellipse(canvas, (cx, cy + 1.6 * b), (1.9 * a, 0.75 * b), palette["clothes"])
    neck = np.array(
        [
            _pt(cx - 0.42 * a, cy + 0.5 * b),
            _pt(cx + 0.42 * a, cy + 0.5 * b),
            _pt(cx + 0.5 * a, cy + 1.05 * b),
            _pt(cx - 0.5 * a, cy + 1.05 * b),
        ],
        dtype=np.int32,
    )
    cv2.fillConvexPoly(canvas, neck, tuple(float(c) for c in palette["neck"]), cv2.LINE_AA, _SHIFT)
    hair_drop = 0.55 * b if p.long_hair else 0.0
    _ellipse(canvas, (cx, cy - 0.1 * b + hair_drop / 2), (1.1 * a, 1.02 * b + hair_drop / 2), palette["hair"])
    for s in (-1, 1):
        _ellipse(canvas, (cx + s * a * 0.98, cy - 0.02 * b), (0.13 * a, 0.2 * b), palette["ear"])
    _ellipse(canvas, (cx, cy), (a, b), palette["skin"])
    _ellipse(canvas, (cx, cy - 0.5 * b), (0.62 * a, 0.22 * b), palette["forehead"])
    _ellipse(canvas, (cx, cy - p.fringe * b), (1.01 * a, 0.45 * b), palette["hair"], start=180, end=360)
    _ellipse(canvas, (cx, cy + 0.08 * b), (0.15 * a, 0.2 * b), palette["nose_region"])


def draw_expression(
    canvas: np.ndarray, p: SubjectProfile, palette: dict[str, np.ndarray], *, expression: float, blink: float
) -> None:
    """Draw the expressive parts over a head from ``draw_head`` (in place, before head motion)."""
    e = max(0.0, expression)
    cx, cy, a, b = p.cx, p.cy, p.face_w, p.face_h
    # Cheeks, raised and flushed with pain.
    for s in (-1, 1):
        _ellipse(
            canvas,
            (cx + s * 0.52 * a, cy + (0.2 - 0.05 * e) * b),
            (0.2 * a, 0.13 * b),
            _mix(palette, "cheek", "cheek_pain", e),
        )
    # Eyes: orbit tightening narrows the opening and darkens the socket.
    eye_y = cy + p.eye_y * b
    ew, eh = p.eye_w * a, p.eye_h * a
    open_h = eh * max(0.06, 1.0 - 0.55 * min(e, 1.4)) * (1.0 - blink)
    centre_y = eye_y + 0.3 * (eh - open_h)
    for s in (-1, 1):
        ex = cx + s * p.eye_dx * a
        _ellipse(canvas, (ex, eye_y), (ew * 1.3, eh * 1.7), _mix(palette, "socket", "socket_pain", e))
        if open_h > 0.9:
            _ellipse(canvas, (ex, centre_y), (ew, open_h), palette["sclera"])
            radius = min(0.45 * ew, open_h)
            _ellipse(canvas, (ex, centre_y), (radius, radius), palette["iris"])
            _ellipse(canvas, (ex, centre_y), (radius * 0.45, radius * 0.45), palette["pupil"])
        _ellipse(canvas, (ex, centre_y), (ew, max(open_h, 0.6)), palette["lid"], start=180, end=360, thickness=2)
        _ellipse(
            canvas,
            (ex, centre_y),
            (ew, max(open_h, 0.6)),
            _mix(palette, "skin", "lid", 0.5),
            start=0,
            end=180,
            thickness=1,
        )
        _ellipse(canvas, (ex - s * ew * 0.95, centre_y), (0.12 * ew, 0.12 * ew), palette["canthus"])
        # Brows: lowered, inner ends pulled down and together (corrugator).
        lower, inner_extra, inward = 0.09 * e * b, 0.07 * e * b, 0.06 * e * a
        y0 = eye_y - p.brow_gap * b + lower
        _line(
            canvas,
            [
                (ex - s * (0.95 * ew + inward), y0 + inner_extra),
                (ex + s * 0.1 * ew, y0 - p.brow_arch * b),
                (ex + s * 1.2 * ew, y0 + 0.03 * b),
            ],
            palette["brow"],
            p.brow_thickness,
        )
    glabella = _mix(palette, "skin", "wrinkle", (e - 0.15) * 1.2)
    for s in (-1, 1):
        top = eye_y - (p.brow_gap - 0.1 * e) * b
        _line(canvas, [(cx + s * 0.05 * a, top), (cx + s * 0.04 * a, top + 0.08 * b)], glabella, 1)
    # Nose: wrinkles across the bridge, flared nostrils, tip pulled up with the upper lip.
    tip_y = cy + (p.nose_len - 0.03 * e) * b
    _line(canvas, [(cx, eye_y + 0.05 * b), (cx + 0.04 * a, tip_y - 0.05 * b)], palette["nose_line"], 1)
    _ellipse(canvas, (cx, tip_y - 0.01 * b), (0.14 * a, 0.05 * b), palette["nose_line"], start=0, end=180, thickness=1)
    for s in (-1, 1):
        _ellipse(
            canvas,
            (cx + s * 0.09 * a * (1 + 0.3 * e), tip_y),
            (0.05 * a * (1 + 0.4 * e), 0.028 * b),
            palette["nostril"],
        )
    nose_wrinkle = _mix(palette, "skin", "wrinkle", (e - 0.2) * 1.3)
    for k in range(3):
        y = eye_y + (0.07 + 0.04 * k) * b
        _line(canvas, [(cx - 0.08 * a, y), (cx, y - 0.01 * b), (cx + 0.08 * a, y)], nose_wrinkle, 1)
    # Mouth: upper lip raised, corners stretched, opening showing clenched teeth.
    mouth_y = cy + (p.mouth_y - 0.035 * e) * b
    half_w = p.mouth_w * a * (1 + 0.28 * e)
    opening = 0.1 * b * float(np.clip(e - 0.2, 0.0, 1.2))
    fold = _mix(palette, "fold", "fold_pain", 0.25 + 0.6 * e)
    for s in (-1, 1):
        _line(
            canvas,
            [
                (cx + s * 0.16 * a, tip_y - 0.02 * b),
                (cx + s * 0.3 * a, tip_y + 0.12 * b),
                (cx + s * (half_w + 0.06 * a), mouth_y + 0.05 * b),
            ],
            fold,
            1 + int(e > 0.5),
        )
    _ellipse(canvas, (cx, mouth_y), (half_w, p.lip * b + opening), palette["lip"])
    if opening > 1.0:
        _ellipse(canvas, (cx, mouth_y), (half_w * 0.88, opening), palette["mouth_inner"])
        _ellipse(canvas, (cx, mouth_y - opening * 0.5), (half_w * 0.66, opening * 0.32), palette["teeth"])
    else:
        _line(canvas, [(cx - half_w, mouth_y), (cx, mouth_y + 0.3), (cx + half_w, mouth_y)], palette["mouth_inner"], 1)


def _background(profile: SubjectProfile) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, FRAME_SIZE)[:, None, None]
    top, bottom = np.array(profile.background_top), np.array(profile.background_bottom)
    image = top * (1 - ramp) + bottom * ramp
    return np.broadcast_to(image, (FRAME_SIZE, FRAME_SIZE, 3)).round().astype(np.uint8).copy()


def _move(image: np.ndarray, profile: SubjectProfile, plan: SamplePlan, frame: int) -> np.ndarray:
    """Small head motion: rotation about the face centre plus translation."""
    matrix = cv2.getRotationMatrix2D((profile.cx, profile.cy), float(plan.angle[frame]), 1.0)
    matrix[:, 2] += (plan.dx[frame], plan.dy[frame])
    return cv2.warpAffine(
        image, matrix, (FRAME_SIZE, FRAME_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


class FaceRenderer:
    """Renders one subject's RGB frames (with sensor noise) and noise-free thermal frames.

    The head is drawn once; each frame adds the expression, moves the head and adds
    lighting flicker and sensor noise from a small bank (saturating uint8 arithmetic
    keeps a 138-frame video cheap).
    """

    def __init__(self, profile: SubjectProfile, noise_seed: int) -> None:
        self.profile = profile
        self.palette = visible_palette(profile)
        self.head = _background(profile)
        draw_head(self.head, profile, self.palette)
        noise = np.random.default_rng(noise_seed).normal(0.0, 2.0, size=(5, FRAME_SIZE, FRAME_SIZE, 3)).round()
        self.noise_up = np.clip(noise, 0, 255).astype(np.uint8)
        self.noise_down = np.clip(-noise, 0, 255).astype(np.uint8)
        self.thermal_colours = thermal_palette()
        self.thermal_head = np.full((FRAME_SIZE, FRAME_SIZE, 3), round(255 * THERMAL_LEVELS["background"]), np.uint8)
        draw_head(self.thermal_head, profile, self.thermal_colours)
        self.lut = ironbow_lut()

    def rgb(self, plan: SamplePlan, frame: int) -> np.ndarray:
        canvas = self.head.copy()
        draw_expression(
            canvas, self.profile, self.palette, expression=float(plan.expression[frame]), blink=float(plan.blink[frame])
        )
        moved = cv2.convertScaleAbs(_move(canvas, self.profile, plan, frame), alpha=float(plan.flicker[frame]))
        bank = frame % len(self.noise_up)
        return cv2.add(cv2.subtract(moved, self.noise_down[bank]), self.noise_up[bank])

    def thermal(self, plan: SamplePlan, frame: int) -> np.ndarray:
        canvas = self.thermal_head.copy()
        draw_expression(
            canvas,
            self.profile,
            self.thermal_colours,
            expression=float(plan.expression[frame]),
            blink=float(plan.blink[frame]),
        )
        moved = _move(canvas[:, :, 0].copy(), self.profile, plan, frame)
        smooth = cv2.GaussianBlur(moved, (0, 0), sigmaX=3.0)
        return self.lut[smooth]
