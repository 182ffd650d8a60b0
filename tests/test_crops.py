"""Crops of flagged fields: cut from the page images kept from the read, the same pixels as rendering the
page again, and pages beyond the memory budget still get their crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import pipeline.crops as crops
from pipeline.config import Limits
from pipeline.datamodel import BBox, DocumentResult, Status
from pipeline.ingest import iter_pdf_pages

DPI = 150


@pytest.fixture()
def two_page_pdf(tmp_path: Path) -> Path:
    pages = []
    for n in (1, 2):
        page = Image.new("RGB", (1240, 1754), "white")
        draw = ImageDraw.Draw(page)
        draw.rectangle((100, 100 * n, 600, 100 * n + 60), outline="black", width=3)
        draw.text((120, 100 * n + 20), f"page {n} 7,862,478.04", fill="black")
        pages.append(page)
    path = tmp_path / "two.pdf"
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=DPI)
    return path


def _flag_both_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    regions = {1: [("forms[0].project.name", "r1", BBox(100, 100, 600, 160))],
               2: [("forms[0].project.code", "r2", BBox(100, 200, 600, 260))]}
    monkeypatch.setattr(crops, "_flagged_regions", lambda result: regions)


def _crops(pdf: Path, out: Path, kept: crops.KeptPages | None) -> dict[str, np.ndarray]:
    result = DocumentResult(doc_id="0" * 64, source=str(pdf), status=Status.NEEDS_REVIEW)
    written = crops.write_crops(result, pdf, out, DPI, Limits(), kept)
    return {field: np.asarray(Image.open(out / rel)) for field, rel in written.crops.items()}


def test_crops_from_kept_pages_match_a_fresh_render(two_page_pdf: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _flag_both_pages(monkeypatch)
    kept = crops.KeptPages()
    for _ in kept.track(iter_pdf_pages(two_page_pdf, str(two_page_pdf), DPI, Limits())):
        pass
    assert sorted(kept.images) == [1, 2]

    def no_render(*args: object, **kwargs: object) -> None:
        raise AssertionError("a kept page was rendered again")

    fresh = _crops(two_page_pdf, tmp_path / "fresh", None)
    monkeypatch.setattr(crops, "iter_pdf_pages", no_render)
    from_kept = _crops(two_page_pdf, tmp_path / "kept", kept)
    assert fresh.keys() == from_kept.keys() == {"forms[0].project.name", "forms[0].project.code"}
    for field, image in fresh.items():
        assert np.array_equal(image, from_kept[field]), field
        assert (image < 128).any()  # the box's ink is in the crop


def test_pages_over_the_budget_are_rendered_again(two_page_pdf: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _flag_both_pages(monkeypatch)
    first = next(iter_pdf_pages(two_page_pdf, str(two_page_pdf), DPI, Limits()))
    kept = crops.KeptPages(budget=first.image.nbytes)  # room for one page
    for _ in kept.track(iter_pdf_pages(two_page_pdf, str(two_page_pdf), DPI, Limits())):
        pass
    assert sorted(kept.images) == [1]
    rendered: list[set[int] | None] = []
    original = crops.iter_pdf_pages

    def counting(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        rendered.append(kwargs.get("only"))  # type: ignore[arg-type]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(crops, "iter_pdf_pages", counting)
    written = _crops(two_page_pdf, tmp_path / "out", kept)
    assert rendered == [{2}]  # only the page that was not kept
    assert set(written) == {"forms[0].project.name", "forms[0].project.code"}
