"""Turning what the user named (files, folders, zips) into the list of documents to process.

A folder is walked in name order; a ``.zip`` is a folder: its members are unpacked under the output's
work directory with every path checked (no ``..``, no absolute paths, no links), and with limits on
member count, total bytes and compression ratio so a zip bomb fails alone instead of filling the disk.
"""

from __future__ import annotations

import contextlib
import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.config import Limits
from pipeline.errors import InputError, LimitExceeded
from pipeline.ingest import read_head, sha256_file, sniff_kind

SKIP_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
SKIP_SUFFIXES = {".json", ".md", ".sqlite", ".tmp", ".lock", ".yaml", ".yml", ".py"}


@dataclass(frozen=True, slots=True)
class InputFile:
    """One document to process: a file on disk and how the user knows it (``source``)."""

    path: Path
    source: str


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A named input that cannot be processed at all (unreadable, a link loop, a bad zip member)."""

    source: str
    message: str
    code: str = "bad_input"


def _is_candidate(path: Path) -> bool:
    name = path.name
    return not name.startswith(".") and name not in SKIP_NAMES and path.suffix.lower() not in SKIP_SUFFIXES


def collect_inputs(paths: list[str], work_dir: Path, limits: Limits) -> tuple[list[InputFile], list[InputProblem]]:
    """Files to process and the problems met while listing them (each keeps the batch going)."""
    files: list[InputFile] = []
    problems: list[InputProblem] = []
    for given in paths:
        path = Path(given)
        try:
            if path.is_dir():
                for item in _walk(path, problems):
                    files.extend(_expand(item, str(item), work_dir, limits, problems, depth=0))
            elif path.exists():
                files.extend(_expand(path, given, work_dir, limits, problems, depth=0))
            else:
                problems.append(InputProblem(given, f"{given}: no such file or folder", "not_found"))
        except OSError as exc:
            problems.append(InputProblem(given, f"{given}: cannot be read ({exc.strerror or exc})", "unreadable"))
    return files, problems


def _unreadable(path: Path, exc: OSError, what: str) -> InputProblem:
    return InputProblem(str(path), f"{path}: cannot be {what} ({exc.strerror or exc})", "unreadable")


def _walk(root: Path, problems: list[InputProblem]) -> Iterator[Path]:
    """Files under ``root`` in name order; symlinked folders are not followed (no loops)."""
    stack = [root]
    seen_dirs: set[tuple[int, int]] = set()
    while stack:
        folder = stack.pop()
        try:
            info = folder.stat()
        except OSError as exc:
            problems.append(_unreadable(folder, exc, "listed"))
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            problems.append(_unreadable(folder, exc, "listed"))
            continue
        subdirs = []
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    target_is_dir = False
                    with contextlib.suppress(OSError):  # a link we cannot follow is reported just below
                        target_is_dir = path.is_dir()
                    if target_is_dir:
                        continue  # a linked folder may loop back; files under real folders only
                    if not path.exists():
                        problems.append(InputProblem(str(path), f"{path}: broken or looping symbolic link", "bad_link"))
                        continue
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        subdirs.append(path)
                elif _is_candidate(path):
                    yield path
            except OSError as exc:
                problems.append(_unreadable(path, exc, "read"))
        stack.extend(reversed(subdirs))


def _expand(path: Path, source: str, work_dir: Path, limits: Limits, problems: list[InputProblem],
            depth: int) -> list[InputFile]:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        problems.append(InputProblem(source, f"{source}: cannot be read ({exc.strerror or exc})", "unreadable"))
        return []
    if not stat.S_ISREG(mode):
        problems.append(InputProblem(source, f"{source}: not a regular file", "bad_input"))
        return []
    try:
        kind = sniff_kind(read_head(path))
    except OSError as exc:
        problems.append(InputProblem(source, f"{source}: cannot be read ({exc.strerror or exc})", "unreadable"))
        return []
    if kind != "zip":
        return [InputFile(path, source)]
    try:
        return _unzip(path, source, work_dir, limits, problems, depth)
    except (InputError, zipfile.BadZipFile, OSError) as exc:
        message = str(exc) if isinstance(exc, InputError) else f"{source}: not a readable zip archive ({exc})"
        code = exc.code if isinstance(exc, InputError) else "bad_input"
        problems.append(InputProblem(source, message, code))
        return []


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The member's path if it stays inside the archive folder; None for ``..``, absolute or drive paths."""
    normal = name.replace("\\", "/")
    member = PurePosixPath(normal)
    if member.is_absolute() or normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        return None
    if any(part in ("..", "") for part in member.parts):
        return None
    return member


def _unzip(path: Path, source: str, work_dir: Path, limits: Limits, problems: list[InputProblem],
           depth: int) -> list[InputFile]:
    if depth >= limits.max_zip_depth:
        raise LimitExceeded(f"zip nested more than {limits.max_zip_depth} levels deep (FORMRESCUE_MAX_ZIP_DEPTH "
                            "raises it)", source=source)
    digest = sha256_file(path)[:16]
    target_root = work_dir / "unzipped" / digest
    files: list[InputFile] = []
    total = 0
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > limits.max_zip_members:
            raise LimitExceeded(f"holds {len(members)} files, over the limit of {limits.max_zip_members} "
                                "(FORMRESCUE_MAX_ZIP_MEMBERS raises it)", source=source)
        for member in members:
            member_source = f"{source}!{member.filename}"
            relative = _safe_member_path(member.filename)
            if relative is None:
                problems.append(InputProblem(member_source, f"{member_source}: unsafe path in zip (absolute or '..'); "
                                             "skipped", "zip_slip"))
                continue
            if stat.S_ISLNK(member.external_attr >> 16):
                problems.append(InputProblem(member_source, f"{member_source}: symbolic link in zip; skipped",
                                             "zip_link"))
                continue
            if not _is_candidate(Path(relative.name)):
                continue
            ratio = member.file_size / max(1, member.compress_size)
            if member.file_size > 1_000_000 and ratio > limits.max_zip_ratio:
                problems.append(InputProblem(member_source, f"{member_source}: compression ratio {ratio:.0f}:1 is over "
                                             f"the limit of {limits.max_zip_ratio:.0f}:1 (zip bomb?); skipped "
                                             "(FORMRESCUE_MAX_ZIP_RATIO raises the limit)", "limit_exceeded"))
                continue
            total += member.file_size
            if total > limits.max_unzipped_bytes:
                # The members unpacked so far are processed; this one and the rest are reported with the zip.
                problems.append(InputProblem(source, f"{source}: unpacks to more than {limits.max_unzipped_bytes:,} "
                                             f"bytes; {member.filename} and the members after it were not unpacked "
                                             "(FORMRESCUE_MAX_UNZIPPED_BYTES raises the limit)", "limit_exceeded"))
                break
            destination = target_root.joinpath(*relative.parts)
            if not destination.resolve().is_relative_to(target_root.resolve()):
                problems.append(InputProblem(member_source, f"{member_source}: unsafe path in zip; skipped",
                                             "zip_slip"))
                continue
            unpacked = _unpack_member(archive, member, destination, member_source, limits)
            if isinstance(unpacked, InputProblem):
                problems.append(unpacked)
                continue
            files.extend(_expand(destination, member_source, work_dir, limits, problems, depth + 1))
    return files


_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _unpack_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, destination: Path, member_source: str,
                   limits: Limits) -> Path | InputProblem:
    """Unpack one member; a damaged, encrypted or oddly compressed one is a problem of its own, not the zip's."""
    if member.flag_bits & 0x1:
        return InputProblem(member_source, f"{member_source}: encrypted (password-protected) zip member; unpack it "
                            "with its password first; skipped", "encrypted")
    if member.compress_type not in _ZIP_METHODS:
        return InputProblem(member_source, f"{member_source}: compressed with zip method {member.compress_type}, "
                            "which is not supported (use deflate); skipped", "bad_input")
    written = 0
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as reader, destination.open("wb") as writer:
            # Count real bytes: a forged header cannot make a member unpack bigger than declared.
            while block := reader.read(1 << 20):
                written += len(block)
                if written > member.file_size or written > limits.max_unzipped_bytes:
                    raise zipfile.BadZipFile(f"unpacks beyond its declared size of {member.file_size:,} bytes")
                writer.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, OSError) as exc:
        destination.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or exc
        return InputProblem(member_source, f"{member_source}: damaged zip member, cannot be unpacked ({reason}); "
                            "skipped", "bad_input")
    return destination
