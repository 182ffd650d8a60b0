"""Crop images of flagged fields, so a reviewer sees the source region next to the value.

The crops are cut from the page images kept from the read (:class:`KeptPages`, up to a memory budget);
a page not kept is rendered again, and only if it holds a flagged field (a 200-page PDF with two
doubtful values renders at most two pages). Each crop is written atomically under
``OUT/crops/<document>/``.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipeline.config import Limits
from pipeline.datamodel import BBox, DocumentResult, PageImage
from pipeline.ingest import IMAGE_KINDS, iter_image_pages, iter_pdf_pages, read_head, sniff_kind
from pipeline.review import document_items

MARGIN = 24  # pixels of context around the field
MAX_SIDE = 1600  # a crop wider than this (a whole goals cell) is scaled down
# Page images kept from the read for the crops: ~12 A4 pages at 300 dpi (26 MB each), so a usual form
# of 2-8 pages is never rendered twice, and a 200-page archive file stays far under its memory bound.
KEEP_PAGES_BYTES = 320 * 2**20


@dataclass
class KeptPages:
    """The page images of one document as the reader got them, kept (not copied) until the crops are cut,
    as long as they fit in ``budget`` bytes; later pages are not kept (their crops render them again).

    Rendering a scanned page again costs about as much CPU as everything else done to it outside OCR;
    keeping the array the reader was given costs only the memory.
    """

    budget: int = KEEP_PAGES_BYTES
    images: dict[int, np.ndarray] = field(default_factory=dict)
    used: int = 0

    def track(self, pages: Iterator[PageImage]) -> Iterator[PageImage]:
        """Pass the pages on, keeping each page image that still fits."""
        for page in pages:
            image = page.image
            if isinstance(image, np.ndarray) and self.used + image.nbytes <= self.budget:
                self.images[page.number] = image
                self.used += image.nbytes
            yield page


def _flagged_regions(result: DocumentResult) -> dict[int, list[tuple[str, str, BBox]]]:
    """page -> [(field path, review id, box)] for every review item with a known place."""
    regions: dict[int, list[tuple[str, str, BBox]]] = defaultdict(list)
    for item in document_items(result):
        if item.page is None or item.field == "forms":
            continue
        form_index = int(item.field.split("[", 1)[1].split("]", 1)[0])
        relative = item.field.split(".", 1)[1]
        form = result.forms[form_index]
        if relative.endswith(".catalogue_id"):
            relative = relative.rsplit(".", 1)[0] + ".name"
        try:
            bbox = form.value_at(relative).bbox
        except KeyError:
            continue
        if bbox is not None:
            regions[item.page].append((item.field, item.review_id, bbox))
    return regions


def _save_jpeg(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".jpg", dir=path.parent)
    os.close(fd)
    try:
        # JPEG at quality 95 without chroma subsampling: strokes and seal colours as sharp as the scan
        # (itself a JPEG in the PDF), 0.6 ms CPU for a typical crop; PNG took 7 ms at zlib level 1 (0.2 s
        # with optimize=True), more than everything else done to a page outside OCR on flagged documents.
        Image.fromarray(image).save(tmp, format="JPEG", quality=95, subsampling=0)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _crop(page: np.ndarray, box: BBox) -> np.ndarray:
    height, width = page.shape[:2]
    x0, y0 = max(0, int(box.x0) - MARGIN), max(0, int(box.y0) - MARGIN)
    x1, y1 = min(width, int(box.x1) + MARGIN), min(height, int(box.y1) + MARGIN)
    region = page[y0:y1, x0:x1]
    longest = max(region.shape[:2]) if region.size else 0
    if longest > MAX_SIDE:
        from PIL import Image

        scale = MAX_SIDE / longest
        size = (max(1, int(region.shape[1] * scale)), max(1, int(region.shape[0] * scale)))
        region = np.asarray(Image.fromarray(region).resize(size))
    return region


def _pages_again(path: Path, source: str, dpi: int, limits: Limits, numbers: set[int]) -> Iterator[PageImage]:
    """The page images of ``numbers`` read from the file again (PDF pages rendered, image frames decoded)."""
    if not numbers:
        return iter(())
    kind = sniff_kind(read_head(path))
    if kind == "pdf":
        return iter_pdf_pages(path, source, dpi, limits, with_text=False, only=numbers)
    if kind in IMAGE_KINDS:
        return (page for page in iter_image_pages(path, source, limits) if page.number in numbers)
    return iter(())


def write_crops(result: DocumentResult, path: Path, out: Path, dpi: int, limits: Limits,
                kept: KeptPages | None = None) -> DocumentResult:
    """Write a crop for every flagged field with a box; the result maps field paths to crop files.

    Pages in ``kept`` are cut from the images kept from the read; the others are read from ``path`` again.
    """
    regions = _flagged_regions(result)
    if not regions:
        return result
    images = {} if kept is None else kept.images
    folder = Path("crops") / result.doc_id[:16]
    crops: dict[str, str] = dict(result.crops)
    wanted = set(regions)
    at_hand = ((number, images[number]) for number in sorted(wanted & images.keys()))
    again = ((page.number, np.asarray(page.image))
             for page in _pages_again(path, result.source, dpi, limits, wanted - images.keys()))
    for number, image in itertools.chain(at_hand, again):  # lazily: one rendered page at a time
        if number not in wanted:
            continue
        for field_path, review_id, box in regions[number]:
            region = _crop(image, box)
            if region.size == 0:
                continue
            relative = folder / f"{review_id}.jpg"
            _save_jpeg(region, out / relative)
            crops[field_path] = relative.as_posix()
        wanted.discard(number)
        if not wanted:
            break
    return replace(result, crops=crops)
