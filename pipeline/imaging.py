"""Page preparation: from a scanned page image to an upright, deskewed ink mask at a working resolution,
and upright crops of text lines cut from the original.

Pure functions on numpy arrays (OpenCV inside). The steps, in the order :func:`prepare_page` runs them:

1. :func:`to_rgb` accepts gray, RGBA, bool (bilevel) or float images.
2. :func:`seal_free_gray` turns RGB into gray in which red seals (公章) print as paper while black text
   under them stays black (colour-based: red ink is bright in the red channel, black ink is not).
3. :func:`ink_masks`: a median filter first on a speckled page (:func:`is_speckled`: dithered
   binarisation, dense pepper noise), a min filter and shrink to the working resolution (150 dpi: thin
   light strokes survive), :func:`flatten_background` (divide by a smooth paper estimate: uneven
   lighting, yellowed paper and a scanner lid's dark band become white), :func:`binarize`,
   :func:`clear_dark_margins`; and a second, lighter text mask at the page's own threshold
   (:func:`text_threshold`, from the paper's noise) for faded print.
4. :func:`text_is_vertical` decides 0 vs 90 degrees from the shape of text blobs (characters of one
   line merge along the line, not across it); 180 degrees cannot be seen in geometry, so the reader
   decides it from OCR confidence (see :mod:`pipeline.scan`).
5. :func:`estimate_skew` finds the tilt (up to +-5 degrees) that makes ruling lines and text lines
   sharpest in the row profile.
6. :func:`apply_transform` turns and deskews the small mask; :class:`PageTransform` maps points and
   boxes between the original image and that prepared frame, and :func:`ocr_crop` cuts a line upright
   from the original at full resolution (a slice, or resampled when the tilt would lean the line into
   its neighbours), levelled so its ink is black, faint strokes thickened. Only the masks are
   resampled, not the page (except for an engine that reads whole pages: :func:`upright_image`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.datamodel import BBox

# Ink threshold on the background-flattened gray image (paper = 255).
INK_THRESHOLD = 175
MAX_SKEW = 5.0


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any common image array (gray, gray+alpha, RGB, RGBA; uint8, uint16, bool, float 0..1) as RGB uint8."""
    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = np.where(arr, 0, 255).astype(np.uint8)  # True = ink (a binarised page)
    elif arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(arr)) <= 1.0 else 1.0
        arr = np.clip(np.nan_to_num(arr) * scale, 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    if arr.ndim == 3 and arr.shape[2] == 1:
        return cv2.cvtColor(arr[:, :, 0], cv2.COLOR_GRAY2RGB)
    if arr.ndim == 3 and arr.shape[2] == 2:
        return cv2.cvtColor(np.ascontiguousarray(arr[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_RGBA2RGB)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    raise ValueError(f"not an image array: shape {arr.shape}")


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """``cv2.connectedComponentsWithStats`` (8-connected): (count, labels, stats, centroids).

    Labels are 16-bit when the blobs fit, which OpenCV labels about 3x faster than 32-bit (7 against
    20 ms on a 150-dpi page); a mask of more than 65,535 blobs (dense speckle) is labelled in 32 bits.
    """
    try:
        return cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_16U)
    except cv2.error:  # OpenCV refuses to overflow 16-bit labels
        return cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)


def to_pixels(image: np.ndarray) -> np.ndarray:
    """A page image as the reader keeps it: a uint8 gray image stays gray (H, W), anything else becomes
    RGB (:func:`to_rgb`). A gray scan has no seal colour to tell apart, and one channel is a third of
    the work of every full-page step."""
    arr = np.asarray(image)
    if arr.ndim == 2 and arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    return to_rgb(arr)


def seal_free_gray(rgb: np.ndarray, luminance: np.ndarray | None = None) -> np.ndarray:
    """Gray image in which red seal ink reads as (near) paper and black ink, also under a seal, stays black.

    Red ink reflects red light, so in the red channel a seal is almost as bright as paper, while black
    and blue ink stay dark; taking the brighter of luminance and red keeps neutral pixels as they were.
    Redness (red minus green/blue) cannot tell a seal from text under it: JPEG colour bleeding tints
    black strokes near a seal as red as the seal's faint edges. ``luminance``: the image's plain gray
    (``cv2.COLOR_RGB2GRAY``) when the caller has it already.
    """
    if rgb.ndim == 2:
        return rgb
    lum = luminance if luminance is not None else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    red = cv2.extractChannel(rgb, 0)
    return cv2.max(lum, red, dst=red)


_PAPER_FLOOR = np.maximum(np.arange(256), 40).astype(np.uint8)  # max(level, 40) as a lookup table: 5x cheaper


def flatten_background(gray: np.ndarray, dpi: float = 300.0) -> np.ndarray:
    """Divide by a smooth estimate of the paper so paper is 255 everywhere (lighting, yellowing, lid band)."""
    h, w = gray.shape
    factor = max(1, round(dpi / 37.5))  # work at ~37 dpi: text and lines vanish under a small max filter
    small = cv2.resize(gray, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    paper = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5)))
    paper = cv2.medianBlur(paper, 5)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    paper = cv2.LUT(paper, _PAPER_FLOOR)  # a near-black band is not paper worth dividing by
    return cv2.divide(gray, paper, scale=255)


def binarize(flat: np.ndarray, threshold: int = INK_THRESHOLD) -> np.ndarray:
    """Ink mask (uint8, 255 = ink) of a background-flattened gray image.

    No morphological clean-up here: an opening that removes salt noise also removes the thin light
    ring of a full stop ("。"). Isolated specks are dropped later, where text lines are known
    (:func:`pipeline.layout.remove_specks`).
    """
    return cv2.threshold(flat, threshold, 255, cv2.THRESH_BINARY_INV)[1]


def clear_dark_margins(mask: np.ndarray, dpi: float = 300.0) -> np.ndarray:
    """Drop ink blobs that touch the image edge and are thick (a scanner lid's band, a page shadow).

    Found on a ~50 dpi copy (cheap); a ruling line or a character is never thick there.
    """
    h, w = mask.shape
    factor = min(1.0, 50.0 / dpi)
    small = downscale_mask(mask, factor) if factor < 1.0 else mask
    solid = cv2.morphologyEx(small, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))  # only blobs >= 3 px thick
    n, labels, stats, _ = components(solid)
    if n <= 1:
        return mask
    sh, sw = solid.shape
    x, y, bw, bh = stats[1:, 0], stats[1:, 1], stats[1:, 2], stats[1:, 3]
    at_edge = (x <= 1) | (y <= 1) | (x + bw >= sw - 1) | (y + bh >= sh - 1)
    drop = np.concatenate(([False], at_edge))
    if not drop.any():
        return mask
    band = cv2.dilate(drop[labels].astype(np.uint8) * 255, np.ones((3, 3), np.uint8))
    band = cv2.resize(band, (w, h), interpolation=cv2.INTER_NEAREST)
    return cv2.subtract(mask, band)


def downscale_mask(mask: np.ndarray, factor: float) -> np.ndarray:
    """A mask shrunk by ``factor`` (< 1) keeping every stroke: a pixel is ink if any ink fell in it."""
    if factor >= 1.0:
        return mask
    h, w = mask.shape
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    k = round(1.0 / factor)
    if k >= 2 and abs(k * factor - 1.0) < 1e-6:
        small = _block_max(mask, k, size)
    else:
        small = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    return cv2.threshold(small, 0, 255, cv2.THRESH_BINARY)[1]


def _block_max(mask: np.ndarray, k: int, size: tuple[int, int]) -> np.ndarray:
    """The largest value of each k x k block (blocks past the edge read 0), as a ``size`` (w, h) image:
    for an integer factor, 3x cheaper than an area resize, and each pixel is exactly its block."""
    width, height = size[0] * k, size[1] * k
    m = mask[:height, :width]
    if m.shape != (height, width):
        m = cv2.copyMakeBorder(m, 0, height - m.shape[0], 0, width - m.shape[1], cv2.BORDER_CONSTANT, value=0)
    rows = m[0::k]
    for i in range(1, k):
        rows = cv2.max(rows, m[i::k])
    out = rows[:, 0::k]
    for j in range(1, k):
        out = np.maximum(out, rows[:, j::k])
    return np.ascontiguousarray(out)


def _text_only(mask: np.ndarray, long_run: int) -> np.ndarray:
    """The mask without long straight runs (ruling lines)."""
    rows = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (long_run, 1)))
    cols = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, long_run)))
    lines = cv2.bitwise_or(rows, cols)
    return cv2.subtract(mask, cv2.dilate(lines, np.ones((3, 3), np.uint8)))


def text_is_vertical(mask: np.ndarray, dpi: float = 300.0) -> bool | None:
    """Whether the text lines on the page run top-to-bottom (page turned by 90 or 270 degrees).

    Characters of one line sit closer together than lines do, so closing the text mask along the line
    direction gives long thin blobs, across it does not. ``None`` when there is too little text to tell.
    """
    small = downscale_mask(mask, min(1.0, 75.0 / dpi))  # ~75 dpi: a body character is ~11 px
    text = _text_only(small, 22)
    n, _, stats, _ = components(text)
    if n < 12:
        return None
    sizes = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    if not np.any(sizes >= 4):
        return None
    char = float(np.median(sizes[sizes >= 4]))
    gap = max(2, round(0.35 * char))

    def elongated(kernel: tuple[int, int], along_x: bool) -> float:
        closed = cv2.morphologyEx(text, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        _, _, st, _ = components(closed)
        w = st[1:, cv2.CC_STAT_WIDTH].astype(float)
        h = st[1:, cv2.CC_STAT_HEIGHT].astype(float)
        long_side, short_side = (w, h) if along_x else (h, w)
        keep = (long_side > 2.5 * short_side) & (short_side < 2.2 * char) & (long_side > 2 * char)
        return float(long_side[keep].sum())

    horizontal = elongated((gap, 1), True)
    vertical = elongated((1, gap), False)
    if horizontal == vertical == 0:
        return None
    # Sideways only on clear evidence: a turned page shows long vertical runs and hardly any horizontal
    # ones. Weak or mixed evidence (specks, bleed-through, a dark scanner bed around a skewed page) keeps
    # the page as it is: on 255 generated pages (30 documents each clean, noisy, harsh) this rule turns
    # every sideways page with text to tell by, and no upright one (a ratio of 1.3 turned 4 upright pages).
    return vertical > 3.0 * horizontal and vertical >= 40 * char


def estimate_skew(mask: np.ndarray, dpi: float = 300.0, max_angle: float = MAX_SKEW) -> float:
    """Angle in degrees (counter-clockwise, OpenCV convention) that levels the page's lines.

    Rotating by the returned angle makes ruling lines and text lines horizontal: the row profile of the
    ink is sharpest there. The profile at each candidate angle is a histogram of sheared ink coordinates
    (no image is rotated): coarse search over +-``max_angle`` at ~75 dpi, refined at ~150 dpi.
    """

    def points(factor: float) -> tuple[np.ndarray, np.ndarray]:
        small = downscale_mask(mask, factor)
        found = cv2.findNonZero(small)  # np.nonzero's (x, y) in the same order, ~4x faster
        if found is None:
            return np.zeros(0), np.zeros(0)
        points = found.reshape(-1, 2)
        ys, xs = points[:, 1], points[:, 0]
        if ys.size > 100_000:  # plenty for a profile; keeps the histogram cheap on dense pages
            step = ys.size // 100_000 + 1
            ys, xs = ys[::step], xs[::step]
        return xs.astype(np.float64) - small.shape[1] / 2, ys.astype(np.float64)

    def best(xs: np.ndarray, ys: np.ndarray, angles: np.ndarray) -> float:
        scores = []
        sheared = np.empty_like(ys)
        for a in angles:
            # rotating the page by +a (counter-clockwise) moves a point at x to y - x*tan(a), to first order
            np.multiply(xs, math.tan(math.radians(float(a))), out=sheared)
            np.rint(np.subtract(ys, sheared, out=sheared), out=sheared)
            rows = sheared.astype(np.int64)
            rows -= rows.min()
            steps = np.diff(np.bincount(rows))
            scores.append(int(np.dot(steps, steps)))  # integers: the exact sum of squares
        return float(angles[int(np.argmax(scores))])

    xs, ys = points(min(1.0, 75.0 / dpi))
    if xs.size < 50:
        return 0.0
    coarse = best(xs, ys, np.arange(-max_angle, max_angle + 1e-6, 0.5))
    fine = best(xs, ys, np.arange(coarse - 0.4, coarse + 0.4 + 1e-6, 0.1))
    xs, ys = points(min(1.0, 150.0 / dpi))
    return best(xs, ys, np.arange(fine - 0.075, fine + 0.075 + 1e-6, 0.025))


@dataclass(frozen=True, slots=True)
class PageTransform:
    """Maps the original page image onto the prepared (working) frame the layout is computed in.

    In order: scale by ``scale`` (the working resolution), turn clockwise by ``rotation`` (0/90/180/270),
    rotate by ``angle`` degrees (deskew; counter-clockwise, OpenCV convention) about the centre, on a
    canvas grown to keep the corners. ``matrix`` is the resulting 2x3 affine map original -> prepared;
    ``size``/``prepared_size`` are (width, height) of the original and of the prepared frame.
    """

    rotation: int
    angle: float
    scale: float
    matrix: tuple[float, float, float, float, float, float]
    size: tuple[int, int]
    prepared_size: tuple[int, int]

    @staticmethod
    def identity(width: int, height: int) -> PageTransform:
        return PageTransform(0, 0.0, 1.0, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), (width, height), (width, height))

    @staticmethod
    def build(width: int, height: int, rotation: int = 0, angle: float = 0.0, scale: float = 1.0) -> PageTransform:
        rotation %= 360
        if rotation not in (0, 90, 180, 270):
            raise ValueError(f"rotation must be a multiple of 90, not {rotation}")
        sw, sh = max(1, round(width * scale)), max(1, round(height * scale))
        sx, sy = sw / width, sh / height
        full = np.array([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], dtype=float)
        turns = {
            0: (np.array([[1, 0, 0], [0, 1, 0]], float), (sw, sh)),
            90: (np.array([[0, -1, sh], [1, 0, 0]], float), (sh, sw)),
            180: (np.array([[-1, 0, sw], [0, -1, sh]], float), (sw, sh)),
            270: (np.array([[0, 1, 0], [-1, 0, sw]], float), (sh, sw)),
        }
        turn, (tw, th) = turns[rotation]
        full = np.vstack([turn, [0, 0, 1]]) @ full
        size = (tw, th)
        if abs(angle) > 1e-6:
            rot = _deskew_matrix(tw, th, angle)
            full = np.vstack([rot, [0, 0, 1]]) @ full
            size = _deskew_size(tw, th, angle)
        values = tuple(float(v) for v in full[:2].ravel())
        return PageTransform(rotation, float(angle), float(scale), values, (width, height), size)  # type: ignore[arg-type]

    @property
    def is_identity(self) -> bool:
        return self.rotation == 0 and abs(self.angle) <= 1e-6 and self.scale == 1.0

    def _m(self) -> np.ndarray:
        return np.array(self.matrix, dtype=float).reshape(2, 3)

    def inverse(self) -> np.ndarray:
        """2x3 affine map prepared -> original."""
        return np.array(self._inverse_values()).reshape(2, 3)

    def _inverse_values(self) -> tuple[float, float, float, float, float, float]:
        a, b, c, d, e, f = self.matrix
        det = a * e - b * d
        return e / det, -b / det, (b * f - c * e) / det, -d / det, a / det, (c * d - a * f) / det

    def to_prepared(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) points of the original image -> prepared frame."""
        m = self._m()
        return np.asarray(points, dtype=float).reshape(-1, 2) @ m[:, :2].T + m[:, 2]

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) points of the prepared frame -> original image."""
        inv = self.inverse()
        return np.asarray(points, dtype=float).reshape(-1, 2) @ inv[:, :2].T + inv[:, 2]

    def box_to_original(self, box: BBox) -> BBox:
        if self.is_identity:
            return box
        a, b, c, d, e, f = self.matrix
        if b == 0.0 and d == 0.0:
            # Only a scale and a shift (no turn, no deskew: every text-layer page): the same floats as the
            # matrix product, without numpy's set-up per box, which costs more than the arithmetic.
            det = a * e
            sx, tx, sy, ty = e / det, -c * e / det, a / det, -a * f / det
            return _scaled(box, sx, tx, sy, ty)
        return _mapped_box(box, self._inverse_values())

    def box_to_prepared(self, box: BBox) -> BBox:
        if self.is_identity:
            return box
        a, b, c, d, e, f = self.matrix
        if b == 0.0 and d == 0.0:  # only a scale and a shift, as in box_to_original
            return _scaled(box, a, c, e, f)
        return _mapped_box(box, self.matrix)

    def to_dict(self) -> dict[str, object]:
        return {"rotation": self.rotation, "angle": round(self.angle, 4), "scale": self.scale,
                "matrix": [round(v, 6) for v in self.matrix], "size": list(self.size),
                "prepared_size": list(self.prepared_size)}


def _scaled(box: BBox, sx: float, tx: float, sy: float, ty: float) -> BBox:
    x0, x1, y0, y1 = box.x0 * sx + tx, box.x1 * sx + tx, box.y0 * sy + ty, box.y1 * sy + ty
    return BBox(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _deskew_size(w: int, h: int, angle: float) -> tuple[int, int]:
    rad = math.radians(angle)
    cos, sin = abs(math.cos(rad)), abs(math.sin(rad))
    return math.ceil(w * cos + h * sin), math.ceil(w * sin + h * cos)


def _deskew_matrix(w: int, h: int, angle: float) -> np.ndarray:
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    nw, nh = _deskew_size(w, h, angle)
    rot[0, 2] += (nw - w) / 2
    rot[1, 2] += (nh - h) / 2
    return rot


def _mapped_box(box: BBox, m: tuple[float, float, float, float, float, float]) -> BBox:
    """The box enclosing the corners of ``box`` mapped by the affine ``m`` (x' = m0 x + m1 y + m2,
    y' = m3 x + m4 y + m5). Plain floats: a page maps a few hundred boxes one at a time, and numpy's
    set-up per box costs ten times the arithmetic."""
    a, b, c, d, e, f = m
    x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
    xs = (a * x0 + b * y0 + c, a * x1 + b * y0 + c, a * x1 + b * y1 + c, a * x0 + b * y1 + c)
    ys = (d * x0 + e * y0 + f, d * x1 + e * y0 + f, d * x1 + e * y1 + f, d * x0 + e * y1 + f)
    return BBox(min(xs), min(ys), max(xs), max(ys))


def apply_transform(scaled: np.ndarray, transform: PageTransform, fill: int = 255,
                    interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Turn and deskew an image that is already at the transform's scale (original orientation)."""
    codes = {0: None, 90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    code = codes[transform.rotation]
    out = scaled if code is None else cv2.rotate(scaled, code)
    if abs(transform.angle) <= 1e-6:
        return np.ascontiguousarray(out)
    h, w = out.shape[:2]
    border = (fill, fill, fill) if out.ndim == 3 else fill
    return cv2.warpAffine(out, _deskew_matrix(w, h, transform.angle), transform.prepared_size, flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


# A line crop is cut without resampling while the page's tilt moves a line by at most this share of
# the crop's height across its width: the recogniser reads a slightly leaning line as well, and a
# slice is exact and cheap. Beyond it (a long line on a page tilted by a degree or more) the slice
# would take in pieces of the lines above and below ("线定工作任供物业" for "按照预定工作职责提供物业").
SLICE_MAX_LEAN = 0.15
_TURN_BACK = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def is_sliceable(transform: PageTransform, box: BBox, max_lean: float = SLICE_MAX_LEAN) -> bool:
    """Whether :func:`crop` cuts ``box`` as a slice of the original (the page's tilt leans it little)."""
    return box.width * abs(math.tan(math.radians(transform.angle))) <= max_lean * box.height


def crop(source: np.ndarray, transform: PageTransform, box: BBox, fill: int = 255,
         max_lean: float = SLICE_MAX_LEAN) -> np.ndarray:
    """The region ``box`` of the prepared frame, cut upright from ``source`` (the original page image, full
    resolution), at the original's resolution.

    When the deskew angle moves a line across the box by little (``max_lean`` of its height) the crop
    is the slice of the original enclosing the box, turned by the page's quarter turn (exact, cheap);
    otherwise it is resampled upright.
    """
    if is_sliceable(transform, box, max_lean):
        outer = transform.box_to_original(box)
        x0, y0 = max(0, round(outer.x0)), max(0, round(outer.y0))
        x1, y1 = min(source.shape[1], round(outer.x1)), min(source.shape[0], round(outer.y1))
        if x1 > x0 and y1 > y0:
            piece = source[y0:y1, x0:x1]
            code = _TURN_BACK.get(transform.rotation)
            return np.ascontiguousarray(piece) if code is None else cv2.rotate(piece, code)
    inv = transform.inverse()
    s = 1.0 / transform.scale
    w, h = max(1, round(box.width * s)), max(1, round(box.height * s))
    # crop pixel (u, v) -> prepared (x0 + u/s, y0 + v/s) -> original
    a = inv[:, :2] / s
    b = inv[:, :2] @ np.array([box.x0, box.y0]) + inv[:, 2]
    m = np.hstack([a, b[:, None]])
    # Warp only the source window the crop comes from (warping from the whole page is slower).
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=float) @ m.T
    sx0 = max(0, int(corners[:, 0].min()) - 2)
    sy0 = max(0, int(corners[:, 1].min()) - 2)
    sx1 = min(source.shape[1], int(corners[:, 0].max()) + 3)
    sy1 = min(source.shape[0], int(corners[:, 1].max()) + 3)
    border = (fill, fill, fill) if source.ndim == 3 else fill
    if sx1 <= sx0 or sy1 <= sy0:
        return np.full((h, w, *source.shape[2:]), fill, dtype=source.dtype)
    m[0, 2] -= sx0
    m[1, 2] -= sy0
    return cv2.warpAffine(source[sy0:sy1, sx0:sx1], m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


@dataclass(frozen=True, slots=True)
class PreparedPage:
    """A page ready for layout and OCR.

    ``ink`` (255 = ink) is the upright, deskewed working frame at ``work_dpi`` that the layout runs on;
    ``transform`` maps original pixels to it. ``text_ink`` is the same frame binarised at the page's
    own text threshold (:func:`text_threshold`): faded toner prints text much lighter than the rules,
    and the text lines are found in it. ``source`` is the page image as given (RGB or gray, original
    frame and resolution): OCR crops are cut from it with :func:`ocr_crop`. ``gray`` is the seal-free gray
    of a colour ``source`` (:func:`seal_free_gray`, made for the masks anyway), which crops cut as a slice
    come from; None for a gray source.
    """

    source: np.ndarray
    ink: np.ndarray
    transform: PageTransform
    dpi: float
    work_dpi: float
    vertical_text: bool | None = None  # what the 90-degree test saw (None = too little text to tell)
    text_ink: np.ndarray | None = None  # None: the same as ``ink``
    speckled: bool = False  # lone dark pixels all over (:func:`is_speckled`): crops are median-filtered
    gray: np.ndarray | None = None

    @property
    def text(self) -> np.ndarray:
        return self.ink if self.text_ink is None else self.text_ink


WORK_DPI = 150.0
# The text threshold sits this many noise deviations below the paper, within these bounds.
TEXT_NOISE_SIGMAS = 6.0
TEXT_THRESHOLD_RANGE = (INK_THRESHOLD, 222)


def text_threshold(flat: np.ndarray) -> int:
    """Ink threshold for text on a background-flattened page: as light as the paper's noise allows.

    Rules print dark on every page, but faded toner or a light font prints text at 180-220 on the
    flattened page, under the fixed threshold; the paper's own spread (scanner noise, estimated from
    the median and lower quartile: most of a page is paper) says how close to paper ink may be.
    """
    sample = flat[::4, ::4].ravel()
    if sample.size < 100:
        return INK_THRESHOLD
    q25, median = np.percentile(sample, [25, 50])
    sigma = max(1.0, float(median - q25) / 0.674)
    lo, hi = TEXT_THRESHOLD_RANGE
    return int(np.clip(round(float(median) - TEXT_NOISE_SIGMAS * sigma), lo, hi))


# A page is speckled (dithered binarisation, dense pepper noise) when lone dark pixels cover this share
# of it: measured 0.2-1.5 % on such pages, under 0.07 % on clean, gray-noisy and lightly specked ones.
SPECKLED_SHARE = 0.003


def is_speckled(gray: np.ndarray) -> bool:
    """Whether a full-resolution gray page is sprinkled with lone dark pixels (judged on its middle:
    margins are paper, and a quarter of the page is plenty)."""
    h, w = gray.shape
    middle = np.ascontiguousarray(gray[h // 4: 3 * h // 4, w // 4: 3 * w // 4])
    if middle.size == 0:
        return False
    dark = cv2.threshold(middle, 128, 1, cv2.THRESH_BINARY_INV)[1]
    near = cv2.boxFilter(dark, cv2.CV_8U, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    lone = cv2.bitwise_and(dark, cv2.threshold(near, 2, 1, cv2.THRESH_BINARY_INV)[1])
    return cv2.countNonZero(lone) > SPECKLED_SHARE * middle.size


def ink_masks(rgb: np.ndarray, dpi: float, scale: float,
              gray: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Seal-free, background-flattened ink masks of an RGB (or gray) page at ``scale`` x its resolution: rules and
    text at the fixed threshold, text at the page's own lighter threshold (None when no lighter), and
    whether the page is speckled (:func:`is_speckled`; its gray is then median-filtered first, or the
    min filter below would turn the speckle into a dense field of ink).

    Shrinking takes the darkest pixel of each neighbourhood first (a min filter) before averaging, so
    a thin light stroke (the ring of "。", a faint rule) stays as dark as it was; plain averaging
    would wash it out to paper. ``gray``: ``seal_free_gray(rgb)`` when the caller has it already.
    """
    if gray is None:
        gray = seal_free_gray(rgb)
    speckled = is_speckled(gray)
    if speckled:
        gray = cv2.medianBlur(gray, 3)
    h, w = gray.shape
    if scale < 1.0:
        k = max(2, round(1.0 / scale))
        gray = cv2.erode(gray, np.ones((k, k), np.uint8))
        if abs(k * scale - 1.0) < 1e-6:  # an integer factor: every k-th pixel of the min filter
            gray = np.ascontiguousarray(gray[::k, ::k][: round(h * scale), : round(w * scale)])
        else:
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                              interpolation=cv2.INTER_AREA)
    work_dpi = dpi * min(1.0, scale)
    flat = flatten_background(gray, work_dpi)
    ink = binarize(flat)
    cleared = clear_dark_margins(ink, work_dpi)
    threshold = text_threshold(flat)
    if threshold <= INK_THRESHOLD + 5:
        return cleared, None, speckled
    light = binarize(flat, threshold)
    band = cv2.subtract(ink, cleared)  # what the margin clean-up took away (a lid band) goes from both
    if band.any():
        light = cv2.subtract(light, cv2.dilate(band, np.ones((5, 5), np.uint8)))
    return cleared, light, speckled


def ink_mask(rgb: np.ndarray, dpi: float, scale: float) -> np.ndarray:
    """The rules-and-text ink mask of :func:`ink_masks`."""
    return ink_masks(rgb, dpi, scale)[0]


def prepare_page(image: np.ndarray, dpi: float = 300.0, rotation: int | None = None, deskew: bool = True,
                 work_dpi: float = WORK_DPI, luminance: np.ndarray | None = None) -> PreparedPage:
    """The upright, deskewed ink mask the layout works on, with the transform back to the original.

    ``rotation`` (clockwise degrees) forces the quarter turn; ``None`` decides 0 vs 90 from the text
    geometry (180 and 270 are decided by the OCR step, which calls this again with its choice).
    ``luminance``: the RGB image's plain gray, when the caller made it already (the page's blank check).
    """
    source = to_pixels(image)
    h, w = source.shape[:2]
    scale = min(1.0, work_dpi / dpi)
    if luminance is not None and (source is not image or luminance.shape != source.shape[:2]):
        luminance = None  # made from other pixels than these
    gray = seal_free_gray(source, luminance)
    ink, light, speckled = ink_masks(source, dpi, scale, gray)
    work_dpi = dpi * scale
    vertical: bool | None = None
    if rotation is None:
        vertical = text_is_vertical(ink, work_dpi)
        rotation = 90 if vertical else 0
    rotation %= 360
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    turned = ink if rotation == 0 else cv2.rotate(ink, codes[rotation])
    angle = round(estimate_skew(turned, work_dpi), 4) if deskew else 0.0
    if abs(angle) < 0.02:
        angle = 0.0
    transform = PageTransform.build(w, h, rotation, angle, scale)

    def upright(mask: np.ndarray) -> np.ndarray:
        if abs(angle) > 0:
            return apply_transform(mask, transform, fill=0, interpolation=cv2.INTER_NEAREST)
        return np.ascontiguousarray(mask if rotation == 0 else cv2.rotate(mask, codes[rotation]))

    if light is None:
        ink_up, light_up = upright(ink), None
    elif abs(angle) > 0:
        # Both masks deskewed in one warp, as two bits of one image (nearest-neighbour moves whole pixels,
        # so each bit lands where its mask's pixel would): a warp costs ten times packing and unpacking.
        both = upright(cv2.bitwise_or(cv2.threshold(ink, 0, 1, cv2.THRESH_BINARY)[1],
                                      cv2.threshold(light, 0, 2, cv2.THRESH_BINARY)[1]))
        ink_up, light_up = cv2.LUT(both, _INK_BIT), cv2.LUT(both, _LIGHT_BIT)
    else:
        ink_up, light_up = upright(ink), upright(light)
    return PreparedPage(source, ink_up, transform, dpi, work_dpi, vertical, light_up, speckled,
                        None if gray is source else gray)


# The two masks packed into one image for a warp (bit 1: ink, bit 2: light), and unpacked.
_INK_BIT = np.where(np.arange(256) & 1, 255, 0).astype(np.uint8)
_LIGHT_BIT = np.where(np.arange(256) & 2, 255, 0).astype(np.uint8)

# A crop whose darkest ink is lighter than this share of its paper is faint print (faded toner, a
# light font): its strokes are thickened by a pixel, which the recogniser reads far better.
FAINT_INK = 0.45


def ocr_crop(page: PreparedPage, box: BBox) -> np.ndarray:
    """An upright gray crop of the prepared-frame ``box`` at full resolution, for a line recogniser (the
    recognisers take gray crops as they are: a third of the pixels of an RGB copy to resize and scale).

    Seal ink is turned to paper (:func:`seal_free_gray`), then levels: the crop's ink (its darkest
    2 %) becomes black and anything lighter than ~82 % of its paper becomes paper, so what is left of
    a seal and scanner haze vanish and faint strokes get full contrast; faint thin strokes are also
    thickened (measured on faded 8 pt serif print: "2" read as "二", "100%" as "100R" before). Painting
    everything outside the ink mask white was tried: it removes specks beside the text but costs faint
    punctuation and confidence; not kept.
    """
    # A slice of the page's seal-free gray is the seal-free gray of the slice (a pixel at a time).
    source = page.gray if page.gray is not None and is_sliceable(page.transform, box) else page.source
    gray = seal_free_gray(crop(source, page.transform, box))
    if page.speckled and min(gray.shape[:2]) >= 3:
        gray = cv2.medianBlur(gray, 3)
    if gray.size:
        sample = gray.ravel()[:: max(1, gray.size // 4096)]  # a few thousand pixels tell the tones
        ink, paper = _quantiles(sample, (0.02, 0.9))
        lo = max(0.0, min(ink, 0.78 * paper))
        hi = max(0.82 * paper, lo + 0.08 * paper)
        gray = cv2.convertScaleAbs(gray, alpha=255.0 / (hi - lo), beta=-lo * 255.0 / (hi - lo))
        if ink > FAINT_INK * paper:
            gray = cv2.erode(gray, _THICKEN)
    return gray


_THICKEN = np.ones((2, 2), np.uint8)


def _quantiles(sample: np.ndarray, qs: tuple[float, float]) -> tuple[float, float]:
    """Two order statistics of a uint8 sample (lower quantile first): the k-th smallest value is the first
    gray level whose running count passes k (a 256-bin count is cheaper than a partial sort)."""
    running = np.cumsum(np.bincount(sample, minlength=256))
    low, high = (int(np.searchsorted(running, int(q * (sample.size - 1)), side="right")) for q in qs)
    return float(low), float(high)


def upright_image(page: PreparedPage) -> tuple[np.ndarray, PageTransform]:
    """The whole page turned and deskewed at full resolution (for engines that read whole pages),
    with the transform original -> that image."""
    w, h = page.transform.size
    full = PageTransform.build(w, h, page.transform.rotation, page.transform.angle, 1.0)
    return to_rgb(apply_transform(page.source, full, fill=255)), full
