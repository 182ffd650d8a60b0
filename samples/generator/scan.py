"""Print-and-scan degradation of rendered pages, and red official seals (公章).

Every random draw comes from the numpy Generator passed in, so a seed gives the same pixels. Values of
one document are drawn once (:func:`sample_scan`) and recorded in the manifest under ``scan``; a page
adds only small jitter (its own rotation) so pages of one scan look alike, as they do from one scanner.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PRESETS = ("clean", "noisy", "harsh")


@dataclass
class ScanParams:
    preset: str = "clean"
    dpi: int = 300
    gray: bool = False
    binarize: bool = False
    rot: float = 0.0            # degrees, document-wide skew; pages jitter around it
    persp: float = 0.0          # corner displacement as a share of the page size
    blur: float = 0.0           # gaussian sigma in pixels at 300 dpi
    noise: float = 0.0          # gaussian noise sigma in grey levels
    sp: float = 0.0             # salt-and-pepper share of pixels
    speck: int = 0              # dust specks per page
    jpeg: int = 85              # JPEG quality of the stored page (binarised pages are stored CCITT G4)
    illum: float = 0.0          # depth of uneven illumination (0..1)
    p_seal: float = 0.0         # chance that a form's last page carries a seal
    lid: bool = False           # a dark shadow along one edge (scanner lid / book fold)
    ink: int = 0                # -1 light (faded toner), 0, 1 dark (bleeding ink)
    paper: list[int] = field(default_factory=lambda: [245, 244, 240])
    black: int = 30             # darkest grey the scanner gives for black ink
    turn_p: float = 0.0         # chance that a page is scanned sideways or upside down
    bed: list[int] = field(default_factory=lambda: [250, 250, 250])  # colour outside the paper

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sample_scan(rng: np.random.Generator, preset: str) -> ScanParams:
    """Scan settings of one document for a preset (ranges follow ../shared/scans manifests, then wider)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    u = rng.uniform
    # paper: near-white, a little warm or cool, never coloured
    paper = [int(x) for x in np.clip(u(232, 252) + np.array([1.0, 0.6, -0.4]) * u(-3, 6) + u(-2, 2, 3), 215, 255)]
    if preset == "clean":
        return ScanParams(
            preset, dpi=int(rng.choice([300, 300, 250])), gray=bool(u() < 0.1), binarize=False,
            rot=round(u(-0.6, 0.6), 4), persp=round(u(0, 0.001), 4), blur=round(u(0.2, 0.5), 4),
            noise=round(u(1, 3), 4), sp=round(u(0, 0.0003), 5), speck=int(rng.integers(0, 25)),
            jpeg=int(rng.integers(60, 90)), illum=round(u(0, 0.07), 4), p_seal=0.35, lid=False, ink=0,
            paper=paper, black=int(rng.integers(25, 45)))
    if preset == "noisy":
        return ScanParams(
            preset, dpi=int(rng.choice([300, 250, 200])), gray=bool(u() < 0.25), binarize=bool(u() < 0.12),
            rot=round(u(-1.8, 1.8), 4), persp=round(u(0.001, 0.006), 4), blur=round(u(0.4, 0.9), 4),
            noise=round(u(3, 6), 4), sp=round(u(0.0003, 0.0015), 5), speck=int(rng.integers(40, 200)),
            jpeg=int(rng.integers(40, 62)), illum=round(u(0.05, 0.16), 4), p_seal=0.5, lid=bool(u() < 0.35),
            ink=int(rng.choice([-1, 0, 0, 1])), paper=paper, black=int(rng.integers(30, 60)), turn_p=0.0)
    return ScanParams(
        preset, dpi=int(rng.choice([300, 240, 200, 200])), gray=bool(u() < 0.3), binarize=bool(u() < 0.25),
        rot=round(u(-5, 5), 4), persp=round(u(0.004, 0.015), 4), blur=round(u(0.7, 1.5), 4),
        noise=round(u(6, 12), 4), sp=round(u(0.0015, 0.004), 5), speck=int(rng.integers(150, 500)),
        jpeg=int(rng.integers(22, 42)), illum=round(u(0.12, 0.3), 4), p_seal=0.7, lid=bool(u() < 0.5),
        ink=int(rng.choice([-1, -1, 0, 1, 1])), paper=paper, black=int(rng.integers(35, 80)),
        turn_p=0.15, bed=[int(x) for x in rng.choice([[250, 250, 250], [40, 40, 42], [200, 200, 198]])])


# ---------------------------------------------------------------------------------------------- seals


def draw_seal(text: str, bottom: str, diameter: int, rng: np.random.Generator, font_path: str | None,
              color: tuple[int, int, int] = (215, 35, 45), density: float = 0.8) -> np.ndarray:
    """A round official seal: ring, five-point star, unit name along the upper arc, optional bottom line.

    Returns an (h, w) float32 alpha mask in 0..1 of ink coverage (the colour is applied by the caller)
    with the uneven inking of a real stamp.
    """
    from PIL import Image, ImageDraw, ImageFont

    d = diameter
    img = Image.new("L", (d, d), 0)
    dr = ImageDraw.Draw(img)
    ring = max(3, d // 28)
    dr.ellipse([ring // 2, ring // 2, d - ring // 2 - 1, d - ring // 2 - 1], outline=255, width=ring)
    c = d / 2
    rs = d * 0.17
    pts = []
    for k in range(10):
        r = rs if k % 2 == 0 else rs * 0.382
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((c + r * math.cos(a), c + r * math.sin(a)))
    dr.polygon(pts, fill=255)

    def font(size: int) -> Any:
        if font_path:
            try:
                return ImageFont.truetype(font_path, size)
            except OSError:
                pass
        return ImageFont.load_default(size)

    n = max(1, len(text))
    fs = int(d * (0.14 if n <= 10 else 0.12 if n <= 14 else 0.1))
    f = font(fs)
    span = min(250.0, 18.0 * n + 40)  # degrees of arc used by the name
    r_text = c - ring - fs * 0.62
    for i, ch in enumerate(text):
        ang = -span / 2 + (span * i / (n - 1) if n > 1 else 0.0)
        tile = Image.new("L", (fs * 2, fs * 2), 0)
        ImageDraw.Draw(tile).text((fs, fs), ch, fill=255, font=f, anchor="mm")
        tile = tile.rotate(-ang, resample=Image.Resampling.BICUBIC)
        x = c + r_text * math.sin(math.radians(ang)) - fs
        y = c - r_text * math.cos(math.radians(ang)) - fs
        img.paste(255, (int(x), int(y)), tile)
    if bottom:
        bf = font(int(d * 0.085))
        dr.text((c, c + d * 0.3), bottom, fill=255, font=bf, anchor="mm")
    a = np.asarray(img, dtype=np.float32) / 255.0
    # uneven ink: low-frequency pressure field times fine grain; some strokes nearly vanish
    import cv2

    low = cv2.resize(rng.uniform(0.35, 1.0, (5, 5)).astype(np.float32), (d, d), interpolation=cv2.INTER_CUBIC)
    grain = rng.uniform(0.6, 1.0, (d, d)).astype(np.float32)
    a = a * np.clip(low, 0, 1) * grain * density
    return cv2.GaussianBlur(a, (0, 0), max(0.6, d / 500))


def stamp(img: np.ndarray, alpha: np.ndarray, cx: float, cy: float, angle: float,
          color: tuple[int, int, int]) -> None:
    """Multiply a seal into an RGB uint8 image in place (ink over print darkens, never lightens)."""
    import cv2

    h, w = alpha.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    a = cv2.warpAffine(alpha, m, (w, h))
    x0, y0 = int(cx - w / 2), int(cy - h / 2)
    H, W = img.shape[:2]
    sx0, sy0 = max(0, -x0), max(0, -y0)
    x0c, y0c = max(0, x0), max(0, y0)
    x1c, y1c = min(W, x0 + w), min(H, y0 + h)
    if x1c <= x0c or y1c <= y0c:
        return
    a = a[sy0:sy0 + (y1c - y0c), sx0:sx0 + (x1c - x0c)][..., None]
    tint = np.array(color, dtype=np.float32) / 255.0
    region = img[y0c:y1c, x0c:x1c].astype(np.float32)
    img[y0c:y1c, x0c:x1c] = np.clip(region * (1 - a * (1 - tint)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- pages


def degrade(page: np.ndarray, p: ScanParams, rng: np.random.Generator,
            seals: list[dict[str, Any]] | None = None, font_path: str | None = None) -> tuple[Any, dict[str, Any]]:
    """One rendered page (RGB uint8, white paper) -> a scanned page (PIL image) and what was done to it.

    Work is done on one grey channel (the page is black print on white) and colour enters only when the
    paper tint is applied; seals are stamped after the geometric warp at their warped position. This keeps
    a 300 dpi A4 page around a second instead of several.
    """
    import cv2
    from PIL import Image

    g = cv2.cvtColor(page, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = g.shape
    scale = p.dpi / 300.0
    info: dict[str, Any] = {}

    if p.ink:
        kern = np.ones((max(2, round(2 * scale)),) * 2, np.uint8)
        if p.ink > 0:  # ink spreads: strokes thicken
            g = 0.5 * g + 0.5 * cv2.erode(g, kern)
        else:  # faded toner: strokes thin and grey
            g = 255 - (255 - (0.5 * cv2.dilate(g, kern) + 0.5 * g)) * 0.72

    rot = p.rot + float(rng.normal(0, 0.15 if p.preset != "harsh" else 0.5))
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jit = rng.uniform(-p.persp, p.persp, (4, 2)) * np.float32([w, h])
    persp = cv2.getPerspectiveTransform(src, (src + jit).astype(np.float32))
    mat = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), rot, 1.0), [0, 0, 1]]) @ persp
    g = cv2.warpPerspective(g, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    on_paper = cv2.warpPerspective(np.full((h, w), 255, np.uint8), mat, (w, h), flags=cv2.INTER_NEAREST)
    info["rot"] = round(rot, 3)

    if p.illum:
        field = cv2.resize(rng.uniform(0, 1, (3, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        g *= 1 - p.illum * np.clip(field, 0, 1)
    if p.lid:
        side = int(rng.integers(4))
        depth = float(rng.uniform(0.02, 0.06))
        dark = float(rng.uniform(0.35, 0.7))
        n = h if side in (0, 1) else w
        ramp = np.ones(n, np.float32)
        band = max(2, int(n * depth))
        ramp[:band] = dark + (1 - dark) * (np.linspace(0, 1, band, dtype=np.float32) ** 0.6)
        if side in (1, 3):
            ramp = ramp[::-1]
        g *= ramp[:, None] if side in (0, 1) else ramp[None, :]
        info["lid_side"] = ["top", "bottom", "left", "right"][side]

    # paper tint and the scanner's black level, one channel at a time (uint8 straight from OpenCV)
    chans = [cv2.convertScaleAbs(g, alpha=(pc - p.black) / 255.0, beta=p.black) for pc in p.paper]
    img = cv2.merge(chans)
    bed = np.empty_like(img)
    bed[:] = p.bed
    img = cv2.copyTo(img, on_paper, bed)

    for s in seals or []:
        cx, cy = s["center"]
        v = mat @ np.array([cx, cy, 1.0])
        alpha = draw_seal(s["text"], s["bottom"], s["diameter"], rng, font_path, tuple(s["color"]), s["density"])
        stamp(img, alpha, v[0] / v[2], v[1] / v[2], s["angle"] + rot, tuple(s["color"]))

    if p.blur:
        img = cv2.GaussianBlur(img, (0, 0), max(0.1, p.blur * scale))
    if p.noise:
        noise = rng.standard_normal((h, w), dtype=np.float32) * np.float32(p.noise)
        img = np.clip(img.astype(np.int16) + noise.astype(np.int16)[..., None], 0, 255).astype(np.uint8)
    if p.speck:
        ys = rng.integers(0, h, p.speck)
        xs = rng.integers(0, w, p.speck)
        rads = rng.uniform(0.6, 3.5, p.speck) * scale
        vals = rng.uniform(p.black, 160, p.speck)
        for y, x, r, val in zip(ys, xs, rads, vals, strict=True):
            cv2.circle(img, (int(x), int(y)), max(1, round(r)), (float(val),) * 3, -1, lineType=cv2.LINE_AA)
    if p.sp:
        n = int(p.sp * h * w)
        ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
        img[ys[: n // 2], xs[: n // 2]] = p.black
        img[ys[n // 2:], xs[n // 2:]] = 255
    out = img

    turn = 0
    if p.turn_p and rng.uniform() < p.turn_p:
        turn = int(rng.choice([90, 180, 270]))
        out = np.ascontiguousarray(np.rot90(out, k=turn // 90))
    info["turn"] = turn

    if p.binarize:
        gray = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        if rng.uniform() < 0.5:
            _, bw = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        else:
            bw = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY,
                                       int(31 * scale) | 1, 12 + p.noise)  # offset above the noise: no grain
        return Image.fromarray(bw).convert("1", dither=Image.Dither.NONE), info
    if p.gray:
        return Image.fromarray(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)), info
    return Image.fromarray(out), info


def jpeg_roundtrip(im: Any, quality: int) -> Any:
    """The page as the JPEG the scanner stored (what PNG/TIFF outputs show too)."""
    from PIL import Image

    if im.mode == "1":
        return im
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).copy()


def save_pdf(images: list[Any], path: Path, dpi: int, quality: int) -> None:
    """Image-only PDF: one page per image, sized so the page is A4 at `dpi` (JPEG, or CCITT G4 when 1-bit)."""
    first, rest = images[0], images[1:]
    fixed = time.struct_time((2023, 3, 1, 0, 0, 0, 2, 60, 0))  # deterministic bytes for a seed
    extra = {} if first.mode == "1" else {"quality": quality}  # 1-bit pages go CCITT G4, which has no quality
    first.save(str(path), "PDF", save_all=True, append_images=rest, resolution=float(dpi), creationDate=fixed,
               modDate=fixed, producer="formrescue samples.generator", **extra)
