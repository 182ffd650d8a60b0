"""Text-layer PDFs read without rendering: ruling lines from the PDF's vector paths give the same tables
(and so the same rows and cells) as the raster path, pages whose rules are only pixels fall back to it,
and /Rotate is honoured."""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import Limits
from pipeline.datamodel import PageImage, Table
from pipeline.imaging import prepare_page
from pipeline.ingest import iter_pdf_pages
from pipeline.layout import LayoutParams, PageTable, detect_rulings, find_tables
from pipeline.scan import format_table, read_pages
from pipeline.vector_rulings import VectorPage, vector_tables

SCANS = Path(os.environ.get("FORMRESCUE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "scans"
TEXT_PDF = SCANS / "clean-20-000.textlayer.pdf"
needs_scans = pytest.mark.skipif(not TEXT_PDF.exists(), reason="../shared/scans not present")
DPI = 300


def _grid(tables: list[PageTable]) -> list[tuple[int, int, list[tuple[int, int, int, int]]]]:
    """Rows x cols and every cell's (row, col, row span, col span), per table."""
    return [(t.n_rows, t.n_cols, [(c.row, c.col, c.row_span, c.col_span) for c in t.cells]) for t in tables]


def _raster_tables(image: np.ndarray) -> list[PageTable]:
    prepared = prepare_page(image, float(DPI), rotation=0)
    params = LayoutParams(dpi=prepared.work_dpi)
    return find_tables(detect_rulings(prepared.ink, params)[0], params)


def _rows(table: Table) -> list[str]:
    """The table as a user reads it (rows, cells, spans, text); the document column grid within 0.002."""
    lines = format_table(table).splitlines()
    return [lines[0].split(" col_edges=")[0], *lines[1:], *(f"{e:.2f}" for e in table.col_edges)]


def _rendered(path: Path, pages: set[int] | None = None) -> list[PageImage]:
    """Pages as the raster path reads them: rendered, with their text-layer words."""
    import pypdfium2 as pdfium

    from pipeline.textlayer import text_layer_words

    pdf = pdfium.PdfDocument(str(path))
    try:
        out = []
        for index in range(len(pdf)):
            if pages is not None and index + 1 not in pages:
                continue
            page = pdf[index]
            image = np.asarray(page.render(scale=DPI / 72).to_pil().convert("RGB"))
            out.append(PageImage(index + 1, image, float(DPI), text_layer_words(page, DPI / 72)))
            page.close()
        return out
    finally:
        pdf.close()


@functools.lru_cache(maxsize=1)
def _shared_rendered() -> list[PageImage]:
    return _rendered(TEXT_PDF, {1, 2})


def _pages(path: Path, only: set[int] | None = None) -> list[PageImage]:
    return list(iter_pdf_pages(path, path.name, DPI, Limits(), only=only))


@needs_scans
def test_vector_rules_give_the_raster_grid_without_rendering() -> None:
    vector = _pages(TEXT_PDF, {1, 2})
    assert all(isinstance(p, VectorPage) and p.image is None and p.text_words for p in vector)
    for page, rendered in zip(vector, _shared_rendered(), strict=True):
        assert isinstance(page, VectorPage)
        assert page.size == (rendered.image.shape[1], rendered.image.shape[0])
        tables = vector_tables(page.rulings, page.size, float(DPI))[0]
        assert tables and _grid(tables) == _grid(_raster_tables(rendered.image))


@needs_scans
def test_vector_read_gives_the_same_table_as_the_raster_read() -> None:
    from_vectors = read_pages(_pages(TEXT_PDF, {1, 2}), None)
    from_pixels = read_pages(_shared_rendered(), None)
    assert _rows(from_vectors.table) == _rows(from_pixels.table)
    assert [p.size for p in from_vectors.pages] == [p.size for p in from_pixels.pages]
    # cells land where they are printed (the raster path deskews by a few hundredths of a degree)
    for a, b in zip(from_vectors.table.cells, from_pixels.table.cells, strict=True):
        assert a.bbox is not None and b.bbox is not None
        assert max(abs(u - v) for u, v in zip(a.bbox.to_list(), b.bbox.to_list(), strict=True)) <= 8


@needs_scans
def test_crops_still_get_rendered_pages() -> None:
    page = _pages_without_text(TEXT_PDF)
    assert not isinstance(page, VectorPage) and page.image.shape[:2] == (3508, 2481)


def _pages_without_text(path: Path) -> PageImage:
    return next(iter_pdf_pages(path, path.name, DPI, Limits(), with_text=False, only={1}))


def _image_page_with_text(out: Path, image: np.ndarray) -> Path:
    """A one-page PDF: ``image`` covering an A4 page (its rules are pixels only) under a line of text."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c
    from PIL import Image

    pdf = pdfium.PdfDocument.new()
    width, height = 595.0, 842.0
    page = pdf.new_page(width, height)
    picture = pdfium.PdfImage.new(pdf)
    picture.set_bitmap(pdfium.PdfBitmap.from_pil(Image.fromarray(image)))
    picture.set_matrix(pdfium.PdfMatrix().scale(width, height))
    page.insert_obj(picture)
    text = pdfium_c.FPDFPageObj_NewTextObj(pdf.raw, b"Helvetica", ctypes.c_float(12.0))
    content = "OCR layer over a scan"
    buffer = ctypes.create_string_buffer((content + "\0").encode("utf-16-le"))
    pdfium_c.FPDFText_SetText(text, ctypes.cast(buffer, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
    pdfium_c.FPDFPageObj_Transform(text, 1, 0, 0, 1, 72, 800)
    pdfium_c.FPDFPage_InsertObject(page.raw, text)
    page.gen_content()
    path = out / "image-with-text.pdf"
    pdf.save(str(path))
    pdf.close()
    return path


@needs_scans
def test_page_whose_rules_are_pixels_falls_back_to_rendering(tmp_path: Path) -> None:
    path = _image_page_with_text(tmp_path, _shared_rendered()[0].image)
    (page,) = _pages(path)
    assert not isinstance(page, VectorPage) and page.image is not None
    assert page.text_words and "OCR layer over a scan" in " ".join(w.text for w in page.text_words)
    tables = _raster_tables(page.image)
    assert _grid(tables) == _grid(_raster_tables(_shared_rendered()[0].image))  # the scan's rules still read
    assert read_pages([page], None).table.n_rows > 10


@needs_scans
def test_rotated_page_reads_as_rendered(tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(TEXT_PDF))
    for index in range(len(pdf) - 1, 0, -1):
        pdf.del_page(index)
    pdf[0].set_rotation(90)
    path = tmp_path / "rotated.pdf"
    pdf.save(str(path))
    pdf.close()
    (page,) = _pages(path)
    assert isinstance(page, VectorPage)
    (rendered,) = _rendered(path)
    assert page.size == (rendered.image.shape[1], rendered.image.shape[0]) == (3508, 2481)
    tables = vector_tables(page.rulings, page.size, float(DPI))[0]
    assert tables and _grid(tables) == _grid(_raster_tables(rendered.image))
    # the characters of the turned page fall in the same cells as on the rendered page (their order in a
    # cell of sideways text depends on the raster path's deskew by hundredths of a degree)
    def cells(table: Table) -> list[tuple[int, int, int, int, str]]:
        return [(c.row, c.col, c.row_span, c.col_span, "".join(sorted(c.text.replace(" ", "")))) for c in table.cells]

    assert cells(read_pages([page], None).table) == cells(read_pages([rendered], None).table)
