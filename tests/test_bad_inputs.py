"""Issue 8, bad inputs: the whole corpus of tests/badinputs.py in one ``formrescue run`` (documents in worker
processes, as in production). Each input gets its documented status and a message naming the file and the
problem, nothing is written outside OUT, and the good documents of the same run are processed and exported.

Two cases need the run's process itself: ``unreadable.txt`` gets a ``PermissionError`` from a monkeypatched
``Path.open`` (tests may run as root, where permission bits do not stop reads), and ``vanishing.txt`` is
deleted by a wrapped ``collect_inputs`` between listing and reading. With FORMRESCUE_ROBUSTNESS_TABLE=path set,
the run's table (docs/robustness.md) is written there.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

import flows.process
from flows.cli import EXIT_FAILED_DOCS, EXIT_USAGE, main
from pipeline.config import LIMIT_ENV, Limits, Settings
from pipeline.errors import ConfigError, LimitExceeded
from pipeline.export import read_csv
from pipeline.ingest import iter_image_pages, iter_pdf_pages
from pipeline.inputs import collect_inputs
from pipeline.process import process_file
from pipeline.store import StateStore
from tests.badinputs import (
    INK,
    Case,
    build_corpus,
    image_bytes,
    pdf_bytes,
    png_declaring,
    zip_bomb,
    zip_bytes,
)
from tests.conftest import SEED, require_shared

ABSOLUTE_TARGET = Path("/tmp/formrescue-absolute.txt")


@dataclass
class CorpusRun:
    code: int
    printed: str
    seconds: float
    root: Path
    inbox: Path
    out: Path
    cases: list[Case]
    rows: dict[str, Any]  # source -> DocumentRow
    before: set[Path]
    after: set[Path]


def _files(root: Path, skip: Path) -> set[Path]:
    found = set()
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder) / d != skip]
        found.update(Path(folder) / n for n in names + dirs)
    return found


@pytest.fixture(scope="module")
def corpus(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    require_shared()
    root = tmp_path_factory.mktemp("bad")
    inbox, out = root / "inbox", root / "out"
    cases = build_corpus(inbox, SEED)
    ABSOLUTE_TARGET.unlink(missing_ok=True)
    real_open = Path.open
    real_collect = flows.process.collect_inputs

    def refusing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "unreadable.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    def vanishing_collect(*args: Any, **kwargs: Any) -> Any:
        listed = real_collect(*args, **kwargs)
        (inbox / "vanishing.txt").unlink()
        return listed

    before = _files(root, out)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(Path, "open", refusing_open)
        patch.setattr(flows.process, "collect_inputs", vanishing_collect)
        started = time.perf_counter()
        code = main(["run", str(inbox), "--out", str(out), "--no-progress", "--workers", "2"])
        seconds = time.perf_counter() - started
    rows = {row.source: row for row in StateStore.for_output(out).documents()}
    run = CorpusRun(code, printed.getvalue(), seconds, root, inbox, out, cases, rows, before, _files(root, out))
    table = os.environ.get("FORMRESCUE_ROBUSTNESS_TABLE")
    if table:
        Path(table).write_text(_markdown(run), encoding="utf-8")
    return run


def _rows_of(run: CorpusRun, case: Case) -> list[Any]:
    """The store rows of a case: its own file, or (a zip) its members not listed as cases of their own."""
    source = str(run.inbox / case.name)
    if source in run.rows:
        return [run.rows[source]]
    listed = {str(run.inbox / c.name) for c in run.cases}
    return [row for s, row in run.rows.items() if s.startswith(source + "!") and s not in listed]


def _status_ok(expected: str, actual: str) -> bool:
    return actual in ("clean", "needs_review") if expected == "processed" else actual == expected


def test_every_bad_input_gets_its_status_and_a_message_naming_it(corpus: CorpusRun) -> None:
    problems = []
    for case in corpus.cases:
        rows = _rows_of(corpus, case)
        if not rows:
            problems.append(f"{case.name!r}: no record in the store")
            continue
        for row in rows:
            if not _status_ok(case.status, row.status.value):
                problems.append(f"{case.name!r}: status {row.status.value}, expected {case.status} ({row.error})")
            if case.status == "failed":
                error = row.error or ""
                if not error.startswith(row.source):
                    problems.append(f"{case.name!r}: message does not start with the file's name: {error!r}")
                missing = [w for w in case.words if w not in error]
                if missing:
                    problems.append(f"{case.name!r}: message {error!r} lacks {missing}")
    assert not problems, "\n".join(problems)
    # The printed summary names the first 20 failures and says where the rest are.
    failed_lines = [line for line in corpus.printed.splitlines() if line.startswith("  failed: ")]
    assert len(failed_lines) == 20
    assert all(any(line.startswith(f"  failed: {s}:") for s in corpus.rows) for line in failed_lines)
    n_failed = sum(row.status.value == "failed" for row in corpus.rows.values())
    assert f"… and {n_failed - 20} more failed: each is listed in review_queue.csv" in corpus.printed


def test_the_run_goes_on_and_exports_the_good_documents(corpus: CorpusRun) -> None:
    assert corpus.code == EXIT_FAILED_DOCS
    records = [json.loads(line) for line in (corpus.out / "forms.jsonl").read_text(encoding="utf-8").splitlines()]
    processed = [c for c in corpus.cases if c.status != "failed"]
    # Every processed document is exported with its two forms (the cut-off one keeps its first form only).
    by_source: dict[str, list[str]] = {}
    for record in records:
        by_source.setdefault(record["source"], []).append(record["project_name"])
    for case in processed:
        for row in _rows_of(corpus, case):
            assert row.source in by_source, f"{row.source!r} missing from forms.jsonl"
            expected = 1 if "cut-off" in case.name else 2
            assert len(by_source[row.source]) == expected, (case.name, by_source[row.source])
    assert by_source[str(corpus.inbox / "good.txt")] == ["G60科创走廊建设", "宣传与推广"]
    assert by_source[str(corpus.inbox / "gbk.txt")] == ["G60科创走廊建设（GBK）", "宣传与推广（GBK）"]
    # The CSVs hold the same forms, and the odd file name (spaces, Chinese, a newline) survives them.
    projects = read_csv(corpus.out / "projects.csv")
    assert len(projects) == len(records)
    assert any(p["source"].endswith("自评 表\n2022 年.txt") for p in projects)
    queue = read_csv(corpus.out / "review_queue.csv")
    failed_in_queue = {q["source"] for q in queue if q["field"] == "forms"}
    failed_rows = {s for s, row in corpus.rows.items() if row.status.value == "failed"}
    assert failed_rows <= failed_in_queue  # every failed document is in front of a person too


def test_an_empty_password_pdf_is_read_not_refused(corpus: CorpusRun) -> None:
    # pdfium opens it without asking: it then fails for what it holds (one blank page), not for its encryption.
    source = str(corpus.inbox / "encrypted-empty-password.pdf")
    problem = (corpus.rows[source].error or "").removeprefix(source)
    assert "blank" in problem and "password" not in problem and "encrypted" not in problem


def test_nothing_is_written_outside_out(corpus: CorpusRun) -> None:
    created = corpus.after - corpus.before
    assert not created, f"written outside OUT: {sorted(created)}"
    removed = corpus.before - corpus.after
    assert removed == {corpus.inbox / "vanishing.txt"}
    assert not ABSOLUTE_TARGET.exists()
    assert not list(corpus.root.rglob("escaped.txt")), "a zip-slip member was unpacked"
    for unpacked in (corpus.out / ".work").rglob("*"):
        assert unpacked.resolve().is_relative_to(corpus.out.resolve())


def test_the_run_is_fast(corpus: CorpusRun) -> None:
    # 300 blank pages, a 64 MiB zip bomb and a 60,000 x 60,000 image must not cost their size.
    blank = corpus.rows[str(corpus.inbox / "blank-300.pdf")]
    assert blank.seconds is not None and blank.seconds < 10, blank.seconds
    assert corpus.seconds < 90, corpus.seconds


# -------------------------------------------------------------------------------- limits, one at a time


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Limits.from_env({}) == Limits()
    limits = Limits.from_env({LIMIT_ENV["max_pages"]: "2", LIMIT_ENV["seconds_per_document"]: "1.5",
                              LIMIT_ENV["max_pixels_per_page"]: "1_000_000"})
    assert (limits.max_pages, limits.seconds_per_document, limits.max_pixels_per_page) == (2, 1.5, 1_000_000)
    for bad in ("lots", "0", "-3"):
        with pytest.raises(ConfigError, match="FORMRESCUE_MAX_PAGES"):
            Limits.from_env({LIMIT_ENV["max_pages"]: bad})
    monkeypatch.setenv("FORMRESCUE_MAX_PAGES", "7")
    monkeypatch.setenv("FORMRESCUE_ISOLATION", "thread")
    settings = Settings.from_env()
    assert settings.limits.max_pages == 7 and settings.isolation == "thread"
    monkeypatch.setenv("FORMRESCUE_ISOLATION", "fork")
    with pytest.raises(ConfigError, match="FORMRESCUE_ISOLATION"):
        Settings.from_env()


def test_a_bad_limit_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(SEED), "--out", str(tmp_path / "out"), "--timeout", "-1"])
    assert exit_info.value.code == EXIT_USAGE
    assert "--timeout" in capsys.readouterr().err


def test_page_and_pixel_limits(tmp_path: Path) -> None:
    pdf = tmp_path / "three.pdf"
    pdf.write_bytes(pdf_bytes(3, INK))
    small = replace(Limits(), max_pages=2)
    with pytest.raises(LimitExceeded, match="has 3 pages, over the limit of 2"):
        list(iter_pdf_pages(pdf, "three.pdf", 72, small))
    assert len(list(iter_pdf_pages(pdf, "three.pdf", 72, Limits()))) == 3
    with pytest.raises(LimitExceeded, match="over the limit of 10,000 pixels"):
        list(iter_pdf_pages(pdf, "three.pdf", 72, replace(Limits(), max_pixels_per_page=10_000)))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(20_000, 20_000))
    with pytest.raises(LimitExceeded, match="20000x20000"):
        list(iter_image_pages(bomb, "bomb.png", Limits()))
    assert Limits().max_pixels_per_page < 20_000 * 20_000
    big = tmp_path / "big.pdf"
    big.write_bytes(pdf_bytes(1, INK))
    with pytest.raises(LimitExceeded, match="FORMRESCUE_MAX_FILE_BYTES"):
        list(iter_pdf_pages(big, "big.pdf", 72, replace(Limits(), max_file_bytes=100)))


def test_zip_limits(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(zip_bomb(4 * 1024 * 1024))
    files, problems = collect_inputs([str(bomb)], tmp_path / "work", Limits())
    assert not files and problems[0].code == "limit_exceeded" and "zip bomb" in problems[0].message
    assert not (tmp_path / "work").exists() or not list((tmp_path / "work").rglob("report.txt"))
    # Raised limits let it through; the unpacked-bytes limit still holds the total.
    lenient = replace(Limits(), max_zip_ratio=1e9)
    files, problems = collect_inputs([str(bomb)], tmp_path / "work", lenient)
    assert len(files) == 1 and not problems
    capped = replace(lenient, max_unzipped_bytes=1024 * 1024)
    files, problems = collect_inputs([str(bomb)], tmp_path / "work2", capped)
    assert not files and "unpacks to more than 1,048,576 bytes" in problems[0].message
    # Members before the one that crosses the total are kept; it and the rest are reported with the zip.
    two = tmp_path / "two.zip"
    two.write_bytes(zip_bytes([("a.txt", b"a" * 600_000), ("b.txt", b"b" * 600_000), ("c.txt", b"c")]))
    files, problems = collect_inputs([str(two)], tmp_path / "work4", capped)
    assert [f.source for f in files] == [f"{two}!a.txt"]
    assert problems[0].source == str(two) and "b.txt and the members after it were not unpacked" in problems[0].message
    many = tmp_path / "many.zip"
    many.write_bytes(zip_bytes([(f"{k}.txt", b"x") for k in range(5)]))
    files, problems = collect_inputs([str(many)], tmp_path / "work3", replace(Limits(), max_zip_members=4))
    assert not files and "holds 5 files, over the limit of 4" in problems[0].message


def test_a_file_gone_before_processing_fails_alone(tmp_path: Path) -> None:
    gone = tmp_path / "gone.txt"
    result = process_file(gone, "gone.txt", Settings(), doc_id="x" * 64)
    assert result.status.value == "failed"
    assert result.error == "gone.txt: cannot be read (No such file or directory)"


def test_image_checks_happen_before_decoding(tmp_path: Path) -> None:
    # The 60,000 x 60,000 header is refused in milliseconds (decoding would need 3.6 GB).
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(60_000, 60_000))
    started = time.perf_counter()
    with pytest.raises(LimitExceeded, match="60000x60000"):
        list(iter_image_pages(bomb, "bomb.png", Limits()))
    assert time.perf_counter() - started < 1
    # A blank scanned page is skipped without OCR; a page with ruled lines is not blank.
    blank = tmp_path / "blank.png"
    blank.write_bytes(image_bytes(800, 1100, lines=False))
    with pytest.raises(Exception, match="the only page is blank"):
        list(iter_image_pages(blank, "blank.png", Limits()))
    ruled = tmp_path / "ruled.png"
    ruled.write_bytes(image_bytes(800, 1100))
    assert len(list(iter_image_pages(ruled, "ruled.png", Limits()))) == 1


# ------------------------------------------------------------------------------------ the documented table


# Issues worth showing in the table with their message; the others (e.g. the seed's rows joined across pages,
# which every copy of it has) by their code only.
SHOWN_ISSUES = {"mixed_encoding", "missing_section"}


def _issue_summary(run: CorpusRun, doc_id: str) -> str:
    result = StateStore.for_output(run.out).result(doc_id)
    if result is None:
        return "no result"
    issues = list(result.issues) + [i for f in result.forms for i in f.issues]
    shown = sorted({f"{i.code}: {i.message}" for i in issues if i.code in SHOWN_ISSUES})
    others = sorted({i.code for i in issues if i.code not in SHOWN_ISSUES})
    return "issues: " + "; ".join(shown + others) if issues else "no issues"


def _markdown(run: CorpusRun) -> str:
    lines = ["| input | what it is | status | message |", "|---|---|---|---|"]
    for case in run.cases:
        for row in _rows_of(run, case) or [None]:
            if row is None:
                lines.append(f"| `{case.name}` | {case.what} | (no record) | |")
                continue
            shown = row.source.replace(str(run.inbox) + "/", "").replace("\n", "\\n")
            message = (row.error or "").replace(str(run.inbox) + "/", "").replace("\n", "\\n").replace("|", "\\|")
            if not row.error:
                message = "processed; " + _issue_summary(run, row.doc_id)
            lines.append(f"| `{shown}` | {case.what} | {row.status.value} | {message} |")
    return "\n".join(lines) + "\n"
