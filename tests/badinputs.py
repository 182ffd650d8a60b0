"""Generator of the bad-input corpus of issue 8, built at test time (nothing large or dangerous is committed).

Every file is made from bytes written here (PDFs, including the RC4-encrypted one, are assembled by hand so
no PDF-writing dependency is needed) or with Pillow for small images. :func:`build_corpus` writes the whole
corpus into a folder and returns, for each case, the status the pipeline must give it and words its message
must hold; ``tests/test_bad_inputs.py`` runs it and ``docs/robustness.md`` lists what it produced.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

A4 = (595, 842)  # points

# --------------------------------------------------------------------------------------------------- PDF


def pdf_bytes(n_pages: int, content: bytes | None = None, *, size: tuple[int, int] = A4,
              encrypt: Callable[[int, bytes], bytes] | None = None, trailer_extra: bytes = b"",
              extra_objects: tuple[bytes, ...] = ()) -> bytes:
    """A minimal, valid PDF of ``n_pages`` pages sharing one content stream (None: pages with no content).

    ``encrypt(object_number, data)`` encrypts the stream (the only string-bearing object), for
    :func:`encrypted_pdf`; ``extra_objects`` are appended after the pages and numbered from there.
    """
    objects: list[bytes] = []
    kids_first = 3 + (1 if content is not None else 0)
    kids = b" ".join(b"%d 0 R" % (kids_first + i) for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n_pages)
    contents_ref = b""
    if content is not None:
        data = encrypt(3, content) if encrypt else content
        objects.append(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
        contents_ref = b" /Contents 3 0 R"
    for _ in range(n_pages):
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << >>%s >>"
                       % (size[0], size[1], contents_ref))
    objects.extend(extra_objects)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, trailer_extra, xref))
    return out.getvalue()


# Some ink: a ruled box with a few lines in it, so a truncated or encrypted PDF is not merely blank.
INK = (b"q 2 w 60 500 m 535 500 l 535 760 l 60 760 l h S "
       b"60 700 m 535 700 l S 60 640 m 535 640 l S 60 580 m 535 580 l S 300 500 m 300 760 l S Q")
# A page whose only object paints white: it has content but no ink (a "scanned" blank page).
WHITE = b"q 1 g 0 0 595 842 re f Q"

_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    i = j = 0
    out = bytearray()
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def encrypted_pdf(user_password: bytes, owner_password: bytes = b"owner", content: bytes = WHITE,
                  n_pages: int = 1) -> bytes:
    """A PDF under the standard security handler, revision 2 (40-bit RC4; PDF 1.4 algorithms 3.2-3.4).

    With an empty user password any reader opens it without asking (only permissions are restricted).
    """
    padded_user = (user_password + _PAD)[:32]
    owner_key = hashlib.md5((owner_password + _PAD)[:32]).digest()[:5]
    o_value = _rc4(owner_key, padded_user)
    permissions = -4
    file_id = hashlib.md5(b"formrescue bad input").digest()
    key = hashlib.md5(padded_user + o_value + struct.pack("<i", permissions) + file_id).digest()[:5]
    u_value = _rc4(key, _PAD)

    def encrypt(number: int, data: bytes) -> bytes:
        object_key = hashlib.md5(key + struct.pack("<I", number)[:3] + b"\x00\x00").digest()[:10]
        return _rc4(object_key, data)

    encrypt_obj = (b"<< /Filter /Standard /V 1 /R 2 /O <" + o_value.hex().encode() + b"> /U <"
                   + u_value.hex().encode() + b"> /P %d >>" % permissions)
    n_objects = 3 + n_pages + 1  # catalog, pages, content, pages, then the encryption dictionary
    trailer = (b" /Encrypt %d 0 R /ID [<" % n_objects + file_id.hex().encode() + b"> <"
               + file_id.hex().encode() + b">]")
    return pdf_bytes(n_pages, content, encrypt=encrypt, trailer_extra=trailer, extra_objects=(encrypt_obj,))


# ------------------------------------------------------------------------------------------------ images


def image_bytes(width: int, height: int, fmt: str = "PNG", color: int = 255, lines: bool = True) -> bytes:
    """A small grayscale page image; ``lines`` draws a ruled box so it is not blank."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (width, height), color)
    if lines and width > 20 and height > 20:
        draw = ImageDraw.Draw(image)
        draw.rectangle((width // 10, height // 10, width * 9 // 10, height * 9 // 10), outline=0, width=2)
        for k in range(1, 4):
            y = height // 10 + k * (height * 8 // 10) // 4
            draw.line((width // 10, y, width * 9 // 10, y), fill=0, width=2)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb: decoding it would need
    width * height * 3 bytes), with only a sliver of image data: it must be refused from the header alone."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    row = b"\x00" + b"\xff" * min(width, 1 << 16)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(row * 4, 9))
            + _png_chunk(b"IEND", b""))


def letter_image() -> bytes:
    """A "scanned letter": a small image with a few lines of Chinese text and no table."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (640, 200), 255)
    draw = ImageDraw.Draw(image)
    font = _cjk_font(28)
    for k, text in enumerate(("关于召开年度工作会议的通知", "各单位：定于下周一召开会议。", "请准时参加。")):
        draw.text((30, 20 + 58 * k), text, fill=0, font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _cjk_font(size: int) -> object:
    from PIL import ImageFont

    for candidate in ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                      "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
                      "/usr/share/fonts/truetype/arphic/uming.ttc", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"):
        if os.path.exists(candidate):
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size)


# -------------------------------------------------------------------------------------------------- zips


def zip_bytes(members: list[tuple[str, bytes | str]], compression: int = zipfile.ZIP_DEFLATED,
              links: tuple[str, ...] = ()) -> bytes:
    """A zip of ``members``; those named in ``links`` are stored as symbolic links (their data is the target)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name)  # ZipInfo keeps the name as given: '../' and '/' survive
            info.compress_type = compression
            if name in links:
                info.create_system = 3  # Unix, so the mode bits below mean a symbolic link
                info.external_attr = (0o120777 << 16)
            archive.writestr(info, data)
    return buffer.getvalue()


def damaged_zip(members: list[tuple[str, bytes | str]], *, encrypted: str = "", method: str = "",
                corrupt: str = "") -> bytes:
    """A zip whose member ``encrypted`` has the encryption flag set, ``method`` an unsupported compression method
    (9, deflate64) and ``corrupt`` a damaged byte in its compressed data: zipfile cannot write these, so the
    headers of a good zip are patched (the local header and the central directory entry of each)."""
    data = bytearray(zip_bytes(members))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        central = archive.start_dir  # type: ignore[attr-defined]
    entries: dict[str, int] = {}
    while data[central:central + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[central + 28:central + 34])
        entries[data[central + 46:central + 46 + name_len].decode()] = central
        central += 46 + name_len + extra_len + comment_len
    if encrypted:
        data[infos[encrypted].header_offset + 6] |= 0x1
        data[entries[encrypted] + 8] |= 0x1
    if method:
        data[infos[method].header_offset + 8:infos[method].header_offset + 10] = struct.pack("<H", 9)
        data[entries[method] + 10:entries[method] + 12] = struct.pack("<H", 9)
    if corrupt:
        local = infos[corrupt].header_offset
        name_len, extra_len = struct.unpack("<HH", data[local + 26:local + 30])
        start = local + 30 + name_len + extra_len
        middle = start + infos[corrupt].compress_size // 2
        data[middle] ^= 0xFF
    return bytes(data)


def zip_bomb(unpacked_bytes: int = 64 * 1024 * 1024) -> bytes:
    """One member of zeros: tens of MB unpacked from ~100 KB (ratio ~1000:1)."""
    return zip_bytes([("report.txt", bytes(unpacked_bytes))])


def nested_zip(depth: int, inner: list[tuple[str, bytes | str]]) -> bytes:
    """``inner`` wrapped in ``depth`` zips (depth 1 is a plain zip of ``inner``)."""
    data = zip_bytes(inner)
    for level in range(depth - 1, 0, -1):
        data = zip_bytes([(f"level{level}.zip", data)])
    return data


# ----------------------------------------------------------------------------------------------- dumps


def seed_variant(seed_text: str, tag: str) -> str:
    """The seed dump as another document (another hash): its project names carry ``tag``."""
    return seed_text.replace("G60科创走廊建设", f"G60科创走廊建设{tag}").replace("宣传与推广", f"宣传与推广{tag}")


def mixed_encoding(seed_text: str) -> bytes:
    """Lines alternately in UTF-8 and GBK: a dump concatenated from two systems."""
    lines = seed_text.split("\n")
    return b"\n".join(line.encode("utf-8" if k % 2 else "gbk") for k, line in enumerate(lines))


def cut_off_indicators(seed_text: str, keep_rows: int = 3) -> str:
    """The first form only, its indicator table cut after ``keep_rows`` rows (the rest of the scan lost)."""
    head, _, rest = seed_text.partition("一级指标")
    kept = rest.split("\n")[: keep_rows + 1]
    return head + "一级指标" + "\n".join(kept) + "\n"


# ---------------------------------------------------------------------------------------------- corpus


@dataclass(frozen=True, slots=True)
class Case:
    """One bad input: the file (name relative to the inbox), what it is, the status it must get and words its
    message must contain (empty for a processed document)."""

    name: str
    what: str
    status: str  # failed | needs_review | clean | processed (clean or needs_review)
    words: tuple[str, ...] = ()


def build_corpus(inbox: Path, seed: Path) -> list[Case]:
    """Write the corpus into ``inbox`` (a folder the run is given) and return its cases.

    Special cases that need the file system (a symbolic-link loop, a FIFO, a file that vanishes) are
    made here too; the vanishing file is only listed: the test removes it between listing and reading.
    """
    inbox.mkdir(parents=True, exist_ok=True)
    text = seed.read_text(encoding="utf-8")
    cases: list[Case] = []

    def put(name: str, data: bytes | str, what: str, status: str, *words: str) -> None:
        path = inbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        cases.append(Case(name, what, status, tuple(words)))

    put("good.txt", text, "the seed dump (the good document of the batch)", "needs_review")
    put("empty.pdf", b"", "zero-byte file", "failed", "is empty (0 bytes)")
    png = image_bytes(400, 300)
    put("truncated.png", png[: len(png) // 2], "truncated PNG", "failed", "damaged or truncated")
    jpeg = image_bytes(400, 300, "JPEG")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], "truncated JPEG", "failed", "damaged or truncated")
    pdf = pdf_bytes(3, INK)
    put("truncated.pdf", pdf[: len(pdf) // 2], "truncated PDF (half its bytes)", "failed", "truncated or damaged")
    put("encrypted.pdf", encrypted_pdf(b"secret"), "encrypted PDF, user password 'secret'", "failed",
        "encrypted PDF", "password")
    put("encrypted-empty-password.pdf", encrypted_pdf(b""), "encrypted PDF, empty user password (opens "
        "without asking; its one page is blank)", "failed", "blank")
    put("blank-300.pdf", pdf_bytes(300, None), "PDF of 300 blank pages", "failed", "all 300 pages are blank")
    put("bomb-60000x60000.png", png_declaring(60_000, 60_000), "PNG declaring 60,000 x 60,000 pixels "
        "(decompression bomb)", "failed", "60000x60000", "over the limit")
    put("one-pixel.png", image_bytes(1, 1), "1-pixel image", "failed", "1x1 pixels", "too small")
    put("pdf-named.png", pdf_bytes(2, WHITE), "a PDF named .png (two white pages)", "failed",
        "all 2 pages are blank")
    put("png-named.pdf", image_bytes(1, 1, color=0), "a PNG named .pdf (1 black pixel)", "failed", "1x1 pixels")
    put("dump-named.pdf", seed_variant(text, "（错扩展名）"), "a text dump named .pdf", "needs_review")
    put("gbk.txt", seed_variant(text, "（GBK）").encode("gbk"), "text dump in GBK", "needs_review")
    put("utf16.txt", seed_variant(text, "（UTF16）").encode("utf-16"), "text dump in UTF-16 (with BOM)",
        "needs_review")
    put("utf16-nobom.txt", seed_variant(text, "（UTF16LE）").encode("utf-16-le"), "text dump in UTF-16LE "
        "without BOM", "needs_review")
    put("mixed-encoding.txt", mixed_encoding(seed_variant(text, "（混合编码）")), "text dump with lines in "
        "UTF-8 and GBK", "needs_review")
    put("letter.png", letter_image(), "a scanned letter (image, three lines of text, no table)", "failed",
        "is not a 绩效自评表")
    put("letter.txt", "关于召开年度工作会议的通知\n各单位：\n定于下周一召开年度工作会议，请准时参加。\n",
        "a letter as a text file", "failed", "is not a 绩效自评表")
    put("indicators-cut-off.txt", cut_off_indicators(seed_variant(text, "（截断）")), "a form whose indicator "
        "table is cut off after 3 rows", "needs_review")
    slip = [("../../escaped.txt", b"x"), ("/tmp/formrescue-absolute.txt", b"x"), ("C:\\windows\\escaped.txt", b"x"),
            ("ok/inner.txt", seed_variant(text, "（zip）").encode())]
    put("zip-slip.zip", zip_bytes(slip),
        "zip with '../', absolute and drive-letter member paths (and one good member)", "failed", "unsafe path")
    damaged = [("a-locked.txt", seed_variant(text, "（加密）")), ("b-deflate64.txt", seed_variant(text, "（压缩）")),
               ("c-crc.txt", seed_variant(text, "（损坏）")), ("d-good.txt", seed_variant(text, "（完好）"))]
    put("damaged.zip", damaged_zip(damaged, encrypted="a-locked.txt", method="b-deflate64.txt", corrupt="c-crc.txt"),
        "zip with an encrypted member, one in an unsupported method (deflate64), one with damaged data, and a good "
        "one", "failed", "skipped")
    cases.append(Case("damaged.zip!d-good.txt", "the good member of that zip", "needs_review"))
    put("zip-link.zip", zip_bytes([("passwd.txt", "../../../../etc/passwd")], links=("passwd.txt",)),
        "zip whose member is a symbolic link to ../../../../etc/passwd", "failed", "symbolic link in zip")
    cases.append(Case("zip-slip.zip!ok/inner.txt", "the good member of that zip", "needs_review"))
    put("bomb.zip", zip_bomb(), "zip bomb: 64 MiB of zeros in ~64 KiB", "failed", "compression ratio",
        "zip bomb")
    inner = [("form.txt", seed_variant(text, "（嵌套）"))]
    put("nested-ok.zip", nested_zip(2, inner), "zip holding a zip holding a dump (depth 2: allowed)",
        "needs_review")
    put("nested-deep.zip", nested_zip(3, [("form.txt", seed_variant(text, "（太深）"))]),
        "zips nested 3 deep (over the limit of 2)", "failed", "nested more than 2 levels")
    put("自评 表\n2022 年.txt", seed_variant(text, "（怪名）"), "file name with spaces, Chinese characters and a "
        "newline", "needs_review")
    # The archive folder's own traps.
    os.symlink("loop-b", inbox / "loop-a")
    os.symlink("loop-a", inbox / "loop-b")
    cases.append(Case("loop-a", "symbolic link loop (loop-a -> loop-b -> loop-a)", "failed", "looping symbolic link"))
    cases.append(Case("loop-b", "the other link of the loop", "failed", "looping symbolic link"))
    (inbox / "sub").mkdir()
    os.symlink("..", inbox / "sub" / "up")  # a linked folder back up: not followed, so no endless walk
    os.mkfifo(inbox / "fifo.txt")
    cases.append(Case("fifo.txt", "a FIFO named like a file (reading it would block forever)", "failed",
                      "not a regular file"))
    put("unreadable.txt", seed_variant(text, "（无权限）"), "a file open() refuses (PermissionError, "
        "monkeypatched: tests run as root)", "failed", "cannot be read", "Permission denied")
    put("vanishing.txt", seed_variant(text, "（消失）"), "a file deleted between listing and reading", "failed",
        "cannot be read", "No such file")
    return cases
