"""Scanned PDF pages are read from their one full-page image (decoded by pdfium, resized in one step) instead
of rendered; gray scans stay gray; anything else on the page is rendered as before."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw

from pipeline.config import Limits
from pipeline.imaging import prepare_page, to_rgb
from pipeline.ingest import iter_pdf_pages

A4_PT = (595.44, 842.04)


def _form_like(width: int, height: int, mode: str) -> Image.Image:
    page = Image.new(mode, (width, height), "white")
    draw = ImageDraw.Draw(page)
    for i in range(8):
        y = height // 10 * (i + 1)
        draw.line((width // 10, y, width * 9 // 10, y), fill="black", width=3)
        draw.text((width // 8, y + 12), f"row {i} 7,862,478.04", fill="black")
    if mode == "RGB":
        draw.ellipse((width // 2, height // 3, width // 2 + 300, height // 3 + 300), outline=(220, 30, 30), width=8)
    return page


def _pdf_with(images: list[tuple[Image.Image, tuple[float, float, float, float]]], path: Path) -> Path:
    """One A4 page holding JPEG images at (x, y, width, height) in points."""
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(*A4_PT)
    for image, (x, y, w, h) in images:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=92)
        obj = pdfium.PdfImage.new(pdf)
        obj.load_jpeg(io.BytesIO(buffer.getvalue()), inline=True)
        obj.set_matrix(pdfium.PdfMatrix().scale(w, h).translate(x, y))
        page.insert_obj(obj)
    page.gen_content()
    pdf.save(str(path))
    return path


def _rendered(path: Path, dpi: int = 300) -> np.ndarray:  # pdfium's own rendering
    page = pdfium.PdfDocument(str(path))[0]
    return np.array(page.render(scale=dpi / 72, rev_byteorder=True).to_numpy()[:, :, :3])


def _read(path: Path, dpi: int = 300) -> np.ndarray:
    (page,) = list(iter_pdf_pages(path, str(path), dpi, Limits()))
    return np.asarray(page.image)


def test_a_gray_scan_below_300_dpi_is_stretched_as_rendering_does_and_stays_gray(tmp_path: Path) -> None:
    pdf = _pdf_with([(_form_like(1654, 2339, "L"), (0, 0, *A4_PT))], tmp_path / "gray200.pdf")
    image = _read(pdf)
    rendered = _rendered(pdf)
    assert image.ndim == 2 and image.shape == rendered.shape[:2]
    assert int(np.abs(image.astype(int) - rendered[:, :, 0]).max()) <= 3  # the same pixels, within rounding


def test_an_rgb_scan_at_300_dpi_keeps_its_own_pixels(tmp_path: Path) -> None:
    scan = _form_like(2481, 3508, "RGB")
    pdf = _pdf_with([(scan, (0, 0, *A4_PT))], tmp_path / "rgb300.pdf")
    image = _read(pdf)
    rendered = _rendered(pdf)
    assert image.shape == rendered.shape == (math.ceil(A4_PT[1] * 300 / 72), math.ceil(A4_PT[0] * 300 / 72), 3)
    decoded = np.asarray(Image.open(io.BytesIO(_jpeg(scan))).convert("RGB"))
    # the scan's own pixels (the canvas is a pixel wider than the scan: its last column is repeated)
    assert np.abs(image[:3508, :2481].astype(int) - decoded).mean() < 1.0
    assert np.abs(image.astype(int) - rendered).mean() < 5.0
    assert image[:, :, 0].mean() > image[:, :, 1].mean()  # the red ring is still red: seals can be told apart


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_a_page_with_more_than_one_image_is_rendered(tmp_path: Path) -> None:
    stamp = Image.new("RGB", (200, 200), (200, 20, 20))
    pdf = _pdf_with([(_form_like(1654, 2339, "L"), (0, 0, *A4_PT)), (stamp, (300, 300, 100, 100))],
                    tmp_path / "two.pdf")
    image = _read(pdf)
    assert image.ndim == 3
    assert np.array_equal(image, _rendered(pdf))  # exactly pdfium's rendering, stamp included


def test_an_image_not_covering_the_page_is_rendered(tmp_path: Path) -> None:
    pdf = _pdf_with([(_form_like(1654, 2339, "L"), (40, 40, A4_PT[0] - 80, A4_PT[1] - 80))], tmp_path / "inset.pdf")
    image = _read(pdf)
    assert np.array_equal(image, _rendered(pdf))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_gray_and_rgb_pages_prepare_alike(mode: str) -> None:
    """A gray page and the same page as RGB give the same ink masks (seal removal needs colour only)."""
    gray = np.asarray(_form_like(1240, 1754, "L"))
    page = gray if mode == "L" else to_rgb(gray)
    prepared = prepare_page(page, 150.0)
    reference = prepare_page(to_rgb(gray), 150.0)
    assert np.array_equal(prepared.ink, reference.ink)
    assert prepared.source.ndim == (2 if mode == "L" else 3)


def test_an_image_far_finer_than_needed_is_rendered(tmp_path: Path) -> None:
    """A scan at more than twice the resolution each way is not decoded whole (a huge or hostile image):
    pdfium renders it at the size needed."""
    pdf = _pdf_with([(_form_like(1800, 2500, "L"), (0, 0, *A4_PT))], tmp_path / "fine.pdf")
    image = _read(pdf, dpi=100)
    assert np.array_equal(image, _rendered(pdf, dpi=100))
