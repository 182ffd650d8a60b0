"""Issue 6: archive ingestion (only new and changed files), reruns that keep reviewers' corrections, one
document's crash not stopping the others, the run's artifact in Prefect. Archives are copies of the seed
dump with one edit each (a distinct document, < 1 s to process, no OCR)."""

from __future__ import annotations

import json
import os
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import flows.process
from flows.cli import EXIT_BUSY, EXIT_FAILED_DOCS, EXIT_OK, EXIT_USAGE, main
from pipeline.store import Decision, StateStore
from tests.conftest import SEED, require_shared

NAME_LINE = "项目名称\tG60科创走廊建设"


def variant(index: int | str) -> str:
    """The seed dump with its first project renamed: a different document with the same forms."""
    text = SEED.read_text(encoding="utf-8")
    assert NAME_LINE in text
    return text.replace(NAME_LINE, f"{NAME_LINE}{index}期", 1)


def first_names(out: Path) -> dict[str, str]:
    """source file name -> first form's project name, from forms.jsonl."""
    names: dict[str, str] = {}
    for line in (out / "forms.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["form_index"] == 0:
            names[Path(record["source"].split("!")[-1]).name] = record["project_name"]
    return names


class Calls:
    """Counts the library's per-document function (OCR and parsing both happen inside it). Documents run in
    threads of this process for it (FORMRESCUE_ISOLATION=thread), not in worker processes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_for: str | None = None) -> None:
        import pipeline.process

        self.sources: Counter[str] = Counter()
        self.lock = threading.Lock()
        real: Callable[..., Any] = pipeline.process.process_file
        monkeypatch.setenv("FORMRESCUE_ISOLATION", "thread")

        def counting(path: Path, source: str, *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.sources[Path(source.split("!")[-1]).name] += 1
            if fail_for and source.endswith(fail_for):
                raise RuntimeError("simulated bug in the pipeline")
            return real(path, source, *args, **kwargs)

        monkeypatch.setattr(pipeline.process, "process_file", counting)

    def take(self) -> Counter[str]:
        taken, self.sources = self.sources, Counter()
        return taken


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    require_shared()
    root = tmp_path / "archive"
    (root / "2022").mkdir(parents=True)
    for i in range(3):
        (root / "2022" / f"doc{i}.txt").write_text(variant(i), encoding="utf-8")
    return root


def ingest(archive: Path, out: Path, *extra: str) -> int:
    return main(["ingest", str(archive), "--out", str(out), "--no-progress", *extra])


def test_reingest_processes_only_new_and_changed_files(prefect_server: None, archive: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    calls = Calls(monkeypatch)
    assert ingest(archive, out) == EXIT_OK
    assert calls.take() == Counter({"doc0.txt": 1, "doc1.txt": 1, "doc2.txt": 1})
    first = (out / "forms.jsonl").read_bytes()
    capsys.readouterr()

    # Unchanged: no OCR, no parsing; only listing and hashing.
    assert ingest(archive, out) == EXIT_OK
    assert calls.take() == Counter()
    assert "processed 0, unchanged 3" in capsys.readouterr().out
    assert (out / "forms.jsonl").read_bytes() == first

    # One changed, one added, one renamed (and moved): only the first two are processed.
    (archive / "2022" / "doc0.txt").write_text(variant("0-revised"), encoding="utf-8")
    (archive / "2023").mkdir()
    (archive / "2023" / "doc3.txt").write_text(variant(3), encoding="utf-8")
    (archive / "2022" / "doc1.txt").rename(archive / "2023" / "doc1-renamed.txt")
    assert ingest(archive, out) == EXIT_OK
    assert calls.take() == Counter({"doc0.txt": 1, "doc3.txt": 1})
    assert "processed 2, unchanged 2" in capsys.readouterr().out
    assert first_names(out) == {"doc0.txt": "G60科创走廊建设0-revised期", "doc1-renamed.txt": "G60科创走廊建设1期",
                                "doc2.txt": "G60科创走廊建设2期", "doc3.txt": "G60科创走廊建设3期"}
    store = StateStore.for_output(out)
    renamed = next(doc_id for doc_id, source in store.current_documents() if source.endswith("doc1-renamed.txt"))
    assert store.document(renamed).attempts == 1  # type: ignore[union-attr]  # known by its hash: not redone


def test_unchanged_files_are_not_even_read_and_edits_are_still_seen(prefect_server: None, archive: Path,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.archive

    out = tmp_path / "out"
    # Files here were written a moment ago: allow trusting signatures at once (normally 2 s after a change).
    monkeypatch.setattr(pipeline.archive, "RACY_SECONDS", 0.0)
    hashed: list[str] = []
    real_hash = flows.process.sha256_file

    def counting_hash(path: Path) -> str:
        hashed.append(path.name)
        return real_hash(path)

    monkeypatch.setattr(flows.process, "sha256_file", counting_hash)
    calls = Calls(monkeypatch)
    assert ingest(archive, out) == EXIT_OK
    assert sorted(hashed) == ["doc0.txt", "doc1.txt", "doc2.txt"]
    hashed.clear()
    calls.take()

    exported = (out / "forms.jsonl").stat().st_mtime_ns
    assert ingest(archive, out) == EXIT_OK
    assert hashed == [] and calls.take() == Counter()
    assert (out / "forms.jsonl").stat().st_mtime_ns == exported  # nothing changed: exports not even rewritten

    # Same size, mtime put back: only the ctime (which no user tool can set) tells; the file is read again.
    target = archive / "2022" / "doc2.txt"
    info = target.stat()
    text = target.read_text(encoding="utf-8")
    edited = text.replace("10,580,000.00", "10,580,000.01", 1)
    assert edited != text and len(edited.encode()) == info.st_size
    target.write_text(edited, encoding="utf-8")
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert ingest(archive, out) == EXIT_OK
    assert hashed == ["doc2.txt"]
    assert calls.take() == Counter({"doc2.txt": 1})
    hashed.clear()

    # --rehash reads everything again and, all being done, processes nothing.
    assert ingest(archive, out, "--rehash") == EXIT_OK
    assert sorted(hashed) == ["doc0.txt", "doc1.txt", "doc2.txt"] and calls.take() == Counter()


def test_a_crashing_document_does_not_stop_the_others_and_rerun_keeps_corrections(
        prefect_server: None, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    calls = Calls(monkeypatch, fail_for="doc1.txt")
    assert ingest(archive, out) == EXIT_FAILED_DOCS
    assert calls.take() == Counter({"doc0.txt": 1, "doc1.txt": 1, "doc2.txt": 1})
    store = StateStore.for_output(out)
    by_name = {Path(d.source).name: d for d in store.documents()}
    assert by_name["doc1.txt"].status.value == "failed"
    error = by_name["doc1.txt"].error or ""
    assert "internal error" in error and "simulated bug" in error
    assert {by_name[n].status.value for n in ("doc0.txt", "doc2.txt")} == {"needs_review"}
    names = first_names(out)
    assert {n for n, project in names.items() if project} == {"doc0.txt", "doc2.txt"}
    assert "doc1.txt" in names and names["doc1.txt"] is None  # the failed document's line: status failed, no fields

    # A reviewer corrects a value of doc0 (as apply-review would store it).
    doc0 = by_name["doc0.txt"].doc_id
    store.save_decisions([Decision(doc0, "forms[0].project_name", "r-test", "correct", "G60科创走廊建设0期",
                                   "G60科创走廊建设（复核）", "tester", "typo", time.time())])

    # The bug is fixed: rerun the failed documents only.
    monkeypatch.undo()
    calls = Calls(monkeypatch)
    assert main(["rerun", "--out", str(out), "--status", "failed", "--no-progress"]) == EXIT_OK
    assert calls.take() == Counter({"doc1.txt": 1})
    assert store.document(by_name["doc1.txt"].doc_id).status.value == "needs_review"  # type: ignore[union-attr]
    assert first_names(out)["doc1.txt"] == "G60科创走廊建设1期"

    # Rerun by id (a prefix, as copied from forms.jsonl): processed again, the correction still applies.
    assert main(["rerun", "--out", str(out), "--id", doc0[:12], "--no-progress"]) == EXIT_OK
    assert calls.take() == Counter({"doc0.txt": 1})
    assert store.document(doc0).attempts == 2  # type: ignore[union-attr]
    assert first_names(out)["doc0.txt"] == "G60科创走廊建设（复核）"
    assert store.result(doc0).forms[0].value_at("project_name").text == "G60科创走廊建设0期"  # type: ignore[union-attr]

    # By status and by source glob (criteria combine).
    assert main(["rerun", "--out", str(out), "--status", "needs_review", "--source", "*doc2*", "--no-progress"]) \
        == EXIT_OK
    assert calls.take() == Counter({"doc2.txt": 1})
    assert main(["rerun", "--out", str(out), "--all", "--no-progress"]) == EXIT_OK
    assert calls.take() == Counter({"doc0.txt": 1, "doc1.txt": 1, "doc2.txt": 1})
    assert first_names(out)["doc0.txt"] == "G60科创走廊建设（复核）"


def test_rerun_of_a_vanished_file_keeps_its_result_and_bad_requests_are_refused(
        prefect_server: None, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert ingest(archive, out) == EXIT_OK
    before = (out / "forms.jsonl").read_text(encoding="utf-8")
    (archive / "2022" / "doc2.txt").unlink()
    (archive / "2022" / "doc1.txt").write_text(variant("1-changed"), encoding="utf-8")  # not ingested yet
    capsys.readouterr()
    assert main(["rerun", "--out", str(out), "--all", "--no-progress"]) == EXIT_FAILED_DOCS
    printed = capsys.readouterr().out
    assert "processed 1" in printed
    assert printed.count("is no longer at any path it was seen under") == 2
    assert (out / "forms.jsonl").read_text(encoding="utf-8") == before  # nothing lost, nothing replaced

    assert main(["rerun", "--out", str(out), "--no-progress"]) == EXIT_USAGE
    assert main(["rerun", "--out", str(out), "--id", "0123456789abcdef", "--no-progress"]) == EXIT_USAGE
    assert "no such document" in capsys.readouterr().err
    assert main(["rerun", "--out", str(tmp_path / "elsewhere"), "--all", "--no-progress"]) == EXIT_USAGE
    assert main(["ingest", str(tmp_path / "unmounted"), "--out", str(out), "--no-progress"]) == EXIT_USAGE
    assert "archive not found" in capsys.readouterr().err
    assert main(["ingest", str(archive), "--out", str(out), "--no-progress", "--dask-address",
                 "tcp://127.0.0.1:1"]) == EXIT_USAGE
    assert "needs a Prefect server" in capsys.readouterr().err

    from pipeline.workspace import locked

    with locked(out):  # another run holds the folder
        assert ingest(archive, out) == EXIT_BUSY


def test_zip_archive_members_are_ingested_once_and_can_be_rerun(prefect_server: None, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    require_shared()
    bundle = tmp_path / "2022.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("dept-a/a.txt", variant("a"))
        archive.writestr("dept-b/b.txt", variant("b"))
        archive.writestr("dept-b/copy-of-a.txt", variant("a"))  # the same bytes twice: one document
    out = tmp_path / "out"
    calls = Calls(monkeypatch)
    assert ingest(bundle, out) == EXIT_OK
    assert calls.take() == Counter({"a.txt": 1, "b.txt": 1})
    assert ingest(bundle, out) == EXIT_OK
    assert calls.take() == Counter()
    assert main(["rerun", "--out", str(out), "--source", "*!dept-b/*", "--no-progress"]) == EXIT_OK
    # b, and a as seen under dept-b/copy-of-a.txt: each document once.
    assert sum(calls.take().values()) == 2


def test_each_run_publishes_a_markdown_artifact(prefect_server: None, archive: Path, tmp_path: Path) -> None:
    """Also the default way documents run: in worker processes (pipeline/workers.py)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.archive import ingest_archive, rerun

    out = tmp_path / "out"
    (archive / "2022" / "empty.txt").write_bytes(b"")
    runs = []
    for call in (lambda: ingest_archive(archive=str(archive), out=str(out), return_state=True),
                 lambda: rerun(out=str(out), status="failed", return_state=True)):
        state = call()
        assert state.is_completed(), state
        runs.append(state.state_details.flow_run_id)
    with get_client(sync_client=True) as client:
        for run_id, kind in zip(runs, ("ingest", "rerun"), strict=True):
            artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
            assert [a.key for a in artifacts] == [f"formrescue-{kind}"]
            markdown = str(artifacts[0].data)
            assert "| documents | processed |" in markdown and "## Failures" in markdown
            assert "empty.txt" in markdown
