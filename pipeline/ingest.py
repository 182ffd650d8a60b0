"""Ingest: what a file is, its content hash, and its content as a Table (text dumps) or pages (images, PDFs).

Kinds are decided from the bytes, not the extension, so a PDF named ``.png`` is still read as a PDF.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import Limits
from pipeline.datamodel import Cell, Issue, PageImage, SourceKind, Table
from pipeline.errors import InputError, LimitExceeded, NotAFormError
from pipeline.text import clean_cell_text, has_cjk

if TYPE_CHECKING:
    import numpy as np
    import pypdfium2 as pdfium

    from pipeline.vector_rulings import VectorPage

TEXT_SUFFIXES = {".txt", ".tsv", ".csv", ".dump", ".text"}
IMAGE_KINDS = {"png", "jpeg", "tiff", "bmp", "gif", "webp"}
# pdfium is not thread-safe, not even across documents: every call into it is made holding this lock
# (documents read in threads of one process, each page rendered on a reader's background thread).
PDFIUM_LOCK = threading.RLock()


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str
    issues: tuple[Issue, ...] = ()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sniff_kind(head: bytes) -> str:
    """The file kind from its first bytes: pdf, png, jpeg, tiff, bmp, gif, webp, zip, empty or text."""
    if not head:
        return "empty"
    if head.startswith(b"%PDF") or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    return "text"


_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def _looks_like_text(text: str) -> bool:
    """Mostly printable characters: binary garbage decoded by a permissive codec fails this."""
    if not text:
        return False
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n\f") or 0xE000 <= ord(ch) <= 0xF8FF
              or ch == "\ufffd")
    return bad / len(text) < 0.01


def decode_text(data: bytes, source: str = "") -> Decoded:
    """Decode a text dump: BOMs, UTF-8, UTF-16 without BOM, GB18030 (a superset of GBK), or a mix by line.

    Raises :class:`InputError` when the bytes are not text in any of these encodings.
    """
    if not data.strip(b" \t\r\n"):
        raise InputError("holds no text (empty or only whitespace)", source=source)
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data.decode(encoding).lstrip("\ufeff"), encoding.replace("-sig", ""))
            except UnicodeDecodeError as exc:
                raise InputError(f"starts with a {encoding} byte-order mark but is not valid {encoding} "
                                 f"({exc.reason} at byte {exc.start})", source=source) from None
    try:
        utf8: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = None
    if utf8 is not None and _looks_like_text(utf8):
        return Decoded(utf8, "utf-8")
    # UTF-16 without a BOM: the tabs, newlines and digits of a dump leave NUL bytes, all in odd positions
    # (little-endian) or all in even ones; a dump mostly of Chinese has few of them, so a few are enough.
    nuls = data.count(0)
    if len(data) >= 4 and nuls:
        odd_nuls = data[1::2].count(0)
        if max(odd_nuls, nuls - odd_nuls) >= 0.95 * nuls:
            encoding = "utf-16-le" if odd_nuls * 2 >= nuls else "utf-16-be"
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                text = ""
            if _looks_like_text(text):
                return Decoded(text, encoding)
        if nuls > len(data) // 4:
            raise InputError("is binary data, not a text dump (it contains NUL bytes)", source=source)
    if utf8 is not None:
        raise InputError("is binary data, not a text dump (control characters)", source=source)
    # Not UTF-8 as a whole: decide line by line, since GB18030 would also "decode" UTF-8 bytes, as mojibake.
    # A short GBK line can also be valid UTF-8 (执 is D6 B4, which UTF-8 reads as a Hebrew point): such a
    # line takes the reading made of plausible characters, else the encoding of the file's other lines.
    readings: list[tuple[bytes, str | None, str | None]] = []
    for raw_line in data.split(b"\n"):
        as_utf8 = _try_decode(raw_line, "utf-8")
        as_gb = None if as_utf8 is not None and raw_line.isascii() else _try_decode(raw_line, "gb18030")
        if as_utf8 is None and as_gb is None:
            raise InputError("is not text in UTF-8, UTF-16 or GB18030/GBK (undecodable bytes): a binary file "
                             "with a text extension?", source=source)
        readings.append((raw_line, as_utf8, as_gb))
    only_utf8 = sum(1 for _, u, g in readings if u is not None and g is None)
    only_gb = sum(1 for _, u, g in readings if g is not None and u is None)
    lines: list[str] = []
    used: set[str] = set()
    for raw_line, as_utf8, as_gb in readings:
        if as_utf8 is not None and as_gb is not None:
            odd_utf8, odd_gb = _implausible(as_utf8), _implausible(as_gb)
            gb = odd_gb < odd_utf8 or (odd_gb == odd_utf8 and only_gb > only_utf8)
            encoding, line = ("gb18030", as_gb) if gb else ("utf-8", as_utf8)
        elif as_utf8 is not None:
            encoding, line = "utf-8", as_utf8
        else:
            encoding, line = "gb18030", as_gb or ""
        lines.append(line)
        if not raw_line.isascii():
            used.add(encoding)
    text = "\n".join(lines)
    if not _looks_like_text(text) or not has_cjk(text):
        raise InputError("is binary data, not a text dump", source=source)
    if used == {"gb18030"}:
        return Decoded(text, "gb18030")
    issue = Issue("mixed_encoding", f"lines are in different encodings ({', '.join(sorted(used))}); each was decoded "
                  "separately")
    return Decoded(text, "+".join(sorted(used)), (issue,))


def _try_decode(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _implausible(text: str) -> int:
    """Characters a Chinese form would hardly hold (what a wrong decoding produces: Hebrew points, Latin-1
    accents, rare symbols); ASCII, CJK ideographs and CJK/full-width punctuation are plausible."""
    return sum(1 for ch in text if not (ch.isascii() or "\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f"
                                        or "\uff00" <= ch <= "\uffef" or "\u2010" <= ch <= "\u2027"
                                        or ch in "·×÷°±≥≤≠‰"))


_BREAK_LINE = re.compile(r"^[\s\-—–=_]*$")


def _is_page_break(line: str) -> bool:
    """Blank lines and lines of only dashes (``--\t--\t--``) separate pages in a dump."""
    return bool(_BREAK_LINE.match(line))


def parse_text_dump(text: str) -> Table:
    """Tab-separated rows to a Table; blank and ``--`` lines are page breaks.

    A dump knows no geometry and no spans: every cell is one grid position, its column its index in the
    line. Misaligned columns are repaired by the form profile, which knows what each column holds.
    """
    cells: list[Cell] = []
    row_pages: list[int] = []
    page = 1
    pending_break = False
    n_cols = 0
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _is_page_break(line):
            pending_break = bool(row_pages)
            continue
        if pending_break:
            page += 1
            pending_break = False
        row = len(row_pages)
        parts = line.split("\t")
        for col, raw in enumerate(parts):
            cells.append(Cell(row=row, col=col, text=clean_cell_text(raw), raw=raw, page=page))
        n_cols = max(n_cols, len(parts))
        row_pages.append(page)
    return Table(cells=tuple(cells), n_rows=len(row_pages), n_cols=n_cols, row_pages=tuple(row_pages),
                 kind=SourceKind.TEXT_DUMP)


def _check_pixels(width: int, height: int, limits: Limits, source: str, page: int) -> None:
    if width < 16 or height < 16:
        raise InputError(f"page {page} is {width}x{height} pixels: too small to hold a form", source=source)
    if width * height > limits.max_pixels_per_page:
        raise LimitExceeded(f"page {page} is {width}x{height} pixels, over the limit of {limits.max_pixels_per_page:,} "
                            "pixels per page (FORMRESCUE_MAX_PIXELS or --max-pixels raise it)", source=source)


def _check_file_size(path: Path, limits: Limits, source: str) -> None:
    size = file_size(path)
    if size > limits.max_file_bytes:
        raise LimitExceeded(f"is {size:,} bytes, over the limit of {limits.max_file_bytes:,} bytes "
                            "(FORMRESCUE_MAX_FILE_BYTES raises it)", source=source)


# Blank pages are skipped before OCR (a 300-page PDF of blank pages must not cost 300 OCR passes). A page is
# looked at as a ~50 dpi thumbnail: box-averaging keeps thin printed lines and small text visibly darker than
# the paper but melts scanner specks into it. Few such pixels means blank; when in doubt the page is read.
# A PDF page with no objects is blank without rendering; otherwise the thumbnail is reduced from the page
# as rendered for reading (pdfium decodes a scanned page's image in full even for a thumbnail).
BLANK_CHECK_DPI = 50.0
INK_CONTRAST = 40  # gray levels under the paper's (median) level that count as ink
BLANK_MAX_INK = 0.0002  # share of ink pixels under which a page is blank (~50 pixels of an A4 thumbnail)


def is_blank(thumbnail: np.ndarray) -> bool:
    """A grayscale thumbnail (``BLANK_CHECK_DPI``) with almost no ink."""
    import numpy as np

    if thumbnail.size == 0:
        return True
    paper = float(np.median(thumbnail))
    ink = int(np.count_nonzero(thumbnail < paper - INK_CONTRAST))
    return ink < BLANK_MAX_INK * thumbnail.size


def _pdf_page_is_empty(page: pdfium.PdfPage) -> bool:
    """No page objects and no annotations: nothing that could draw ink."""
    import pypdfium2.raw as pdfium_c

    return pdfium_c.FPDFPage_CountObjects(page.raw) == 0 and pdfium_c.FPDFPage_GetAnnotCount(page.raw) == 0


def _pdf_page_has_text(page: pdfium.PdfPage) -> bool:
    textpage = page.get_textpage()
    try:
        return textpage.count_chars() > 0  # invisible text (an OCR layer) is content even without ink
    finally:
        textpage.close()


NATIVE_SLACK = 2  # pixels by which a scan may miss the rendered page size and still be used as it is


def _scanned_page_image(page: pdfium.PdfPage, scale: float, size: tuple[int, int]) -> np.ndarray | None:
    """The page as its one full-page scan image (RGB, or gray for a gray scan), decoded by pdfium and
    stretched as rendering stretches it.

    A scanned page is usually one image covering the page (plus, in a searchable scan, invisible OCR
    text). Rendering it makes pdfium decode the image, then stretch and composite it at ``scale``, the
    stretching costing twice the decoding (80-125 ms against 12-40 ms CPU for an A4 page at 300 dpi):
    here the decoded image is resized to the page's size in one step. Anything else on the page (vector
    paths, visible text, annotations, a form, a transparent or turned image, a page /Rotate, another
    colour space, an image more than twice the needed resolution) gives None, and the page is rendered.
    """
    import cv2
    import numpy as np
    import pypdfium2.raw as pdfium_c

    if page.get_rotation() != 0 or pdfium_c.FPDFPage_GetAnnotCount(page.raw) != 0:
        return None
    image = None
    for obj in page.get_objects(max_depth=0):
        if obj.type == pdfium_c.FPDF_PAGEOBJ_TEXT and (
                pdfium_c.FPDFTextObj_GetTextRenderMode(obj.raw) == pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE):
            continue  # the OCR layer of a searchable scan draws nothing
        if obj.type != pdfium_c.FPDF_PAGEOBJ_IMAGE or image is not None:
            return None
        image = obj
    if image is None or pdfium_c.FPDFPageObj_HasTransparency(image.raw):
        return None
    a, b, c, d, e, f = image.get_matrix().get()
    left, bottom, right, top = page.get_cropbox()
    if b != 0 or c != 0 or a <= 0 or d <= 0:
        return None
    x0, x1 = (e - left) * scale, (e + a - left) * scale
    y0, y1 = (top - (f + d)) * scale, (top - f) * scale  # PDF y runs up, pixel rows down
    if max(abs(x0), abs(y0), abs(x1 - (right - left) * scale), abs(y1 - (top - bottom) * scale)) > 1.0:
        return None  # not the whole page
    meta = image.get_metadata()
    if meta.colorspace not in (pdfium_c.FPDF_COLORSPACE_DEVICEGRAY, pdfium_c.FPDF_COLORSPACE_DEVICERGB,
                               pdfium_c.FPDF_COLORSPACE_ICCBASED):
        return None
    if meta.width * meta.height > 4 * size[0] * size[1]:
        return None  # far finer than needed (or a bomb): decoded whole it would be huge; rendering scales it
    bitmap = image.get_bitmap(render=False)  # pdfium's own buffer, freed with the object
    pixels = bitmap.to_numpy()
    conversion = {pdfium_c.FPDFBitmap_Gray: None, pdfium_c.FPDFBitmap_BGR: cv2.COLOR_BGR2RGB,
                  pdfium_c.FPDFBitmap_BGRx: cv2.COLOR_BGRA2RGB}
    if bitmap.format not in conversion:
        return None
    code = conversion[bitmap.format]
    width, height = size
    if abs(pixels.shape[1] - width) > NATIVE_SLACK or abs(pixels.shape[0] - height) > NATIVE_SLACK:
        # pdfium stretches a full-page image over the whole canvas; bilinear, as here, gives its pixels to
        # within 2 gray levels when a lower-resolution scan is enlarged.
        interpolation = cv2.INTER_AREA if pixels.shape[1] > width else cv2.INTER_LINEAR
        if code == cv2.COLOR_BGR2RGB:
            # Resized first, then its channels swapped in place (each channel is resized alike): one
            # page-sized array made instead of two.
            out = cv2.resize(pixels, size, interpolation=interpolation)
            return cv2.cvtColor(out, code, dst=out)
        return cv2.resize(pixels if code is None else cv2.cvtColor(pixels, code), size, interpolation=interpolation)
    # A scan at the page's resolution give or take a pixel (the canvas is rounded up): its own pixels, cut
    # or edged to the canvas, rather than a resampling that would blur every stroke a little. A gray scan
    # stays gray: a third of the pixels in every later step.
    canvas = np.empty((height, width) if code is None else (height, width, 3), np.uint8)
    h, w = min(height, pixels.shape[0]), min(width, pixels.shape[1])
    if code is None:
        canvas[:h, :w] = pixels[:h, :w]
    else:
        converted = cv2.cvtColor(pixels[:h, :w], code, dst=canvas[:h, :w])  # converted straight into place
        if not np.shares_memory(converted, canvas):  # an OpenCV that would not write into a view
            canvas[:h, :w] = converted
    canvas[:, w:] = canvas[:, w - 1:w]
    canvas[h:] = canvas[h - 1:h]
    return canvas


def _luminance(image: np.ndarray) -> np.ndarray | None:
    """The gray of an RGB page image (None for a gray one): made once for the blank check and kept with
    the page for its preparation."""
    import cv2

    return None if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _image_is_blank(image: np.ndarray, dpi: float, luminance: np.ndarray | None = None) -> bool:
    """Whether a page image (RGB or gray) is blank, judged on a ~``BLANK_CHECK_DPI`` gray thumbnail
    (of ``luminance``, the image's gray, when given).

    The thumbnail averages whole blocks of pixels (as PIL's ``reduce``, within one gray level; a
    partial block at the right or bottom edge is left out): an area resize by an exact integer factor
    is OpenCV's fast path, 4x cheaper than PIL's conversion and reduction.
    """
    import cv2

    factor = max(1, round(dpi / BLANK_CHECK_DPI))
    h, w = image.shape[:2]
    small_w, small_h = max(1, w // factor), max(1, h // factor)
    if luminance is None:
        luminance = _luminance(image)
    gray = (image if luminance is None else luminance)[: small_h * factor, : small_w * factor]
    return is_blank(cv2.resize(gray, (small_w, small_h), interpolation=cv2.INTER_AREA))


def _all_blank(n_pages: int, source: str) -> NotAFormError:
    what = "the only page is blank" if n_pages == 1 else f"all {n_pages} pages are blank"
    return NotAFormError(f"is not a 绩效自评表 ({what}: no ink to read)", source=source)


def count_pages(data_path: Path, kind: str, source: str) -> int:
    """Number of pages without rendering any (PDF page count, frames of a TIFF)."""
    if kind == "pdf":
        import pypdfium2 as pdfium

        with PDFIUM_LOCK:
            try:
                pdf = pdfium.PdfDocument(str(data_path))
            except pdfium.PdfiumError as exc:
                raise InputError(_pdf_error_message(exc), source=source) from None
            try:
                return len(pdf)
            finally:
                pdf.close()
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(data_path) as image:
            return int(getattr(image, "n_frames", 1))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InputError(f"is not a readable image ({exc})", source=source) from None


def _pdf_error_message(exc: Exception) -> str:
    text = str(exc)
    if "password" in text.lower():
        return "is an encrypted PDF that needs a password; decrypt it first (qpdf --decrypt) and rerun"
    return f"is not a readable PDF ({text}); the file may be truncated or damaged"


def iter_pdf_pages(path: Path, source: str, dpi: int, limits: Limits, *, with_text: bool = True,
                   only: set[int] | None = None) -> Iterator[PageImage]:
    """Rasterise each page in turn (pages are streamed: one page image in memory at a time).

    A page with a real text layer also carries its words, so OCR is skipped for it; when its table rules
    are vector paths (an office-made PDF) it is not rendered at all: it comes as a
    :class:`~pipeline.vector_rulings.VectorPage` (no image, its ruling segments instead). ``only`` renders just
    those page numbers (crops of flagged fields); ``with_text=False`` skips reading the text layer. Blank
    pages are skipped; a document of blank pages only raises :class:`NotAFormError`.
    """
    import pypdfium2 as pdfium

    _check_file_size(path, limits, source)
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(path))
            n_pages = len(pdf)
        except pdfium.PdfiumError as exc:
            raise InputError(_pdf_error_message(exc), source=source) from None
    try:
        if n_pages == 0:
            raise InputError("is a PDF with no pages", source=source)
        if n_pages > limits.max_pages:
            raise LimitExceeded(f"has {n_pages} pages, over the limit of {limits.max_pages} pages per document "
                                "(FORMRESCUE_MAX_PAGES or --max-pages raise it)", source=source)
        scale = dpi / 72.0
        read = 0
        for index in range(n_pages):
            if only is not None and index + 1 not in only:
                continue
            with PDFIUM_LOCK:
                page = _read_pdf_page(pdf, index, scale, dpi, limits, source, with_text)
            if page is None:
                continue  # empty or blank
            read += 1
            yield page
        if read == 0 and only is None:
            raise _all_blank(n_pages, source)
    finally:
        with PDFIUM_LOCK:
            pdf.close()


def _read_pdf_page(pdf: pdfium.PdfDocument, index: int, scale: float, dpi: int, limits: Limits, source: str,
                   with_text: bool) -> VectorPage | PageImage | None:
    """One page of an open PDF: its vector rules and text, its image (with its text layer's words if it
    has one), or None for an empty or blank page. Call it holding :data:`PDFIUM_LOCK`."""
    import numpy as np
    import pypdfium2 as pdfium

    from pipeline.textlayer import text_layer_words
    from pipeline.vector_rulings import vector_page

    page = pdf[index]
    try:
        width_pt, height_pt = page.get_size()
        try:
            width, height = int(width_pt * scale), int(height_pt * scale)
        except (ValueError, OverflowError):  # a NaN or infinite MediaBox
            raise InputError(f"page {index + 1} has no valid size ({width_pt} x {height_pt} points)",
                             source=source) from None
        _check_pixels(width, height, limits, source, index + 1)
        if _pdf_page_is_empty(page):
            return None
        words = text_layer_words(page, scale) if with_text else None
        size = (math.ceil(width_pt * scale), math.ceil(height_pt * scale))  # as page.render sizes it
        vector = None if words is None else vector_page(page, index + 1, float(dpi), size, words)
        if vector is not None:
            return vector
        image = _scanned_page_image(page, scale, size)
        if image is None:
            # RGB straight from pdfium's buffer (rev_byteorder), one copy: through PIL it took three.
            bitmap = page.render(scale=scale, rev_byteorder=True)
            image = np.array(bitmap.to_numpy()[:, :, :3])
            bitmap.close()
        luminance = _luminance(image)
        if _image_is_blank(image, float(dpi), luminance) and words is None and not _pdf_page_has_text(page):
            return None
        return PageImage(number=index + 1, image=image, dpi=float(dpi), text_words=words, luminance=luminance)
    except pdfium.PdfiumError as exc:
        raise InputError(f"page {index + 1} cannot be rendered ({exc})", source=source) from None
    finally:
        page.close()


def iter_image_pages(path: Path, source: str, limits: Limits) -> Iterator[PageImage]:
    """Pages of an image file (every frame of a multi-page TIFF). DPI from the file, 300 if absent."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    _check_file_size(path, limits, source)
    Image.MAX_IMAGE_PIXELS = None  # we enforce our own, clearer limit below, from the header, before decoding
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InputError(f"is not a readable image ({exc})", source=source) from None
    with image:
        n_frames = int(getattr(image, "n_frames", 1))
        if n_frames > limits.max_pages:
            raise LimitExceeded(f"has {n_frames} frames, over the limit of {limits.max_pages} pages per document "
                                "(FORMRESCUE_MAX_PAGES or --max-pages raise it)", source=source)
        read = 0
        for index in range(n_frames):
            try:
                image.seek(index)
                _check_pixels(image.width, image.height, limits, source, index + 1)
                dpi_info = image.info.get("dpi", (300, 300))
                dpi = float(dpi_info[0]) if dpi_info and dpi_info[0] and float(dpi_info[0]) > 50 else 300.0
                # Gray and bilevel images stay gray (one channel); anything else becomes RGB.
                frame = np.asarray(image.convert("L" if image.mode in ("1", "L") else "RGB"))
                luminance = _luminance(frame)
                if _image_is_blank(frame, dpi, luminance):
                    continue
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                raise InputError(f"image data of page {index + 1} is damaged or truncated ({exc})",
                                 source=source) from None
            read += 1
            yield PageImage(number=index + 1, image=frame, dpi=dpi, luminance=luminance)
        if read == 0:
            raise _all_blank(n_frames, source)


def read_head(path: Path, size: int = 2048) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def file_size(path: Path) -> int:
    return path.stat().st_size


def load_bytes(path: Path, limits: Limits, source: str) -> bytes:
    _check_file_size(path, limits, source)
    return path.read_bytes()


def image_from_bytes(data: bytes) -> object:
    from PIL import Image

    return Image.open(io.BytesIO(data))
