"""Pixels of the synthetic world: the palette, shape masks, backgrounds and frame composition.

Everything is drawn without anti-aliasing (``cv2.LINE_8``) so that every object pixel has exactly its
palette colour. Backgrounds are near-grey (per-pixel channel spread <= 2 * ``MAX_TINT``), far from every
palette colour, so "is this pixel the red of the red circle" has a crisp answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Saturated colours, each >= 80 apart (L-inf) from every other and >= 170 channel spread.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (250, 150, 20),
    "yellow": (235, 235, 30),
    "green": (30, 190, 50),
    "cyan": (20, 200, 225),
    "blue": (30, 70, 230),
    "purple": (150, 40, 210),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
SIZES: tuple[str, ...] = ("small", "large")
BACKGROUNDS: tuple[str, ...] = ("plain", "textured")
TEXTURES: tuple[str, ...] = ("checker", "stripes", "noise", "gradient")
MAX_TINT = 8
TEXTURE_AMPLITUDE = 28


def size_radius(size: str, width: int, height: int) -> int:
    """Nominal radius in pixels of an object of ``size`` ("small" | "large") in a width x height frame."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; allowed: {SIZES}")
    frac = 0.065 if size == "small" else 0.115
    return max(3, int(round(frac * min(width, height))))


def shape_mask(shape: str, radius: int) -> np.ndarray:
    """Boolean mask [2r+1, 2r+1] of ``shape`` inscribed in a circle of ``radius`` around the centre pixel."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; allowed: {SHAPES}")
    r = int(radius)
    patch = np.zeros((2 * r + 1, 2 * r + 1), dtype=np.uint8)
    if shape == "circle":
        cv2.circle(patch, (r, r), r, 1, thickness=-1, lineType=cv2.LINE_8)
    elif shape == "square":
        h = int(round(0.8 * r))
        cv2.rectangle(patch, (r - h, r - h), (r + h, r + h), 1, thickness=-1, lineType=cv2.LINE_8)
    else:
        if shape == "triangle":
            angles = np.deg2rad(np.array([-90.0, 30.0, 150.0]))
            radii = np.full(3, float(r))
        else:  # star: 5 outer and 5 inner vertices
            angles = np.deg2rad(-90.0 + 36.0 * np.arange(10))
            radii = np.where(np.arange(10) % 2 == 0, float(r), 0.45 * r)
        pts = np.stack([r + radii * np.cos(angles), r + radii * np.sin(angles)], axis=1)  # [V, 2] (x, y)
        cv2.fillPoly(patch, [np.round(pts).astype(np.int32)], 1, lineType=cv2.LINE_8)
    return patch.astype(bool)


@dataclass(frozen=True)
class Placement:
    """Where one object's mask lands in a frame: frame slice, patch slice and the clipped mask."""

    ys: slice
    xs: slice
    mask: np.ndarray  # bool, the part of the shape mask inside the frame


def place_mask(mask: np.ndarray, cx: int, cy: int, width: int, height: int) -> Placement | None:
    """Clip ``mask`` centred at integer (cx, cy) to the frame; None when nothing of it is inside."""
    r = mask.shape[0] // 2
    x0, y0 = cx - r, cy - r
    x1, y1 = x0 + mask.shape[1], y0 + mask.shape[0]
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if fx0 >= fx1 or fy0 >= fy1:
        return None
    sub = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    if not sub.any():
        return None
    return Placement(ys=slice(fy0, fy1), xs=slice(fx0, fx1), mask=sub)


def make_background(kind: str, width: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Near-grey background [H, W, 3] uint8 of ``kind`` ("plain" | "textured") and the texture name used."""
    if kind not in BACKGROUNDS:
        raise ValueError(f"unknown background {kind!r}; allowed: {BACKGROUNDS}")
    base = float(rng.uniform(70.0, 185.0))
    tint = rng.integers(-MAX_TINT, MAX_TINT + 1, size=3).astype(np.float32)
    texture = "none"
    pattern = np.zeros((height, width), dtype=np.float32)
    if kind == "textured":
        texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        if texture == "checker":
            cell = int(rng.integers(6, 17))
            pattern = np.where(((yy // cell) + (xx // cell)) % 2 == 0, 1.0, -1.0).astype(np.float32)
        elif texture == "stripes":
            period = float(rng.uniform(8.0, 20.0))
            angle = float(rng.uniform(0.0, np.pi))
            pattern = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
        elif texture == "noise":
            coarse = rng.uniform(-1.0, 1.0, size=(max(2, height // 8), max(2, width // 8))).astype(np.float32)
            pattern = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
        else:
            angle = float(rng.uniform(0.0, 2 * np.pi))
            ramp = xx * np.cos(angle) + yy * np.sin(angle)
            pattern = 2.0 * (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0) - 1.0
    grey = base + TEXTURE_AMPLITUDE * pattern  # [H, W]
    img = grey[:, :, None] + tint[None, None, :]  # [H, W] -> [H, W, 3]
    return np.clip(np.round(img), 0, 255).astype(np.uint8), texture


def nearest_palette(pixels: np.ndarray, tol: float = 60.0) -> np.ndarray:
    """Palette index of each RGB pixel [..., 3] (nearest in L-inf), or -1 when farther than ``tol``."""
    pal = np.array(list(PALETTE.values()), dtype=np.int16)  # [C, 3]
    diff = np.abs(pixels.astype(np.int16)[..., None, :] - pal)  # [..., C, 3]
    dist = diff.max(axis=-1)  # [..., C]
    idx = dist.argmin(axis=-1)
    best = np.take_along_axis(dist, idx[..., None], axis=-1)[..., 0]
    return np.where(best <= tol, idx, -1)
