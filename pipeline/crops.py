"""Crop images of flagged fields, so a reviewer sees the source region next to the value.

Pages are rendered again only for the pages that hold a flagged field (a 200-page PDF with two doubtful
values renders two pages), and each crop is written atomically under ``OUT/crops/<document>/``.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.config import Limits
from pipeline.datamodel import BBox, DocumentResult
from pipeline.ingest import IMAGE_KINDS, iter_image_pages, iter_pdf_pages, read_head, sniff_kind
from pipeline.review import document_items

MARGIN = 24  # pixels of context around the field
MAX_SIDE = 1600  # a crop wider than this (a whole goals cell) is scaled down


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


def _save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        # zlib level 1: PIL's optimize=True tried every filter at maximum compression, ~0.2 s CPU a crop,
        # more than recognising a page on documents with many flags; level 1 is ~20x cheaper, ~30 % larger.
        Image.fromarray(image).save(tmp, format="PNG", compress_level=1)
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


def write_crops(result: DocumentResult, path: Path, out: Path, dpi: int, limits: Limits) -> DocumentResult:
    """Write a crop for every flagged field with a box; the result maps field paths to crop files."""
    regions = _flagged_regions(result)
    if not regions:
        return result
    kind = sniff_kind(read_head(path))
    if kind == "pdf":
        pages = iter_pdf_pages(path, result.source, dpi, limits, with_text=False, only=set(regions))
    elif kind in IMAGE_KINDS:
        pages = iter_image_pages(path, result.source, limits)
    else:
        return result
    folder = Path("crops") / result.doc_id[:16]
    crops: dict[str, str] = dict(result.crops)
    wanted = set(regions)
    for page in pages:
        if page.number not in wanted:
            continue
        for field, review_id, box in regions[page.number]:
            region = _crop(np.asarray(page.image), box)
            if region.size == 0:
                continue
            relative = folder / f"{review_id}.png"
            _save_png(region, out / relative)
            crops[field] = relative.as_posix()
        wanted.discard(page.number)
        if not wanted:
            break
    return replace(result, crops=crops)
