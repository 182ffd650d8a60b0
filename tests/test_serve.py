"""``formrescue serve`` against a real ``prefect server start`` (its database a copy of the session test server's,
migrated already): the deployments are registered with the nightly schedule as given, and triggering them
through the Prefect client, with parameters, runs them to completion with the outputs written. Every
process is started here and stopped by its process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from flows.cli import EXIT_USAGE, main
from tests.conftest import SEED, require_shared

BIN = Path(sys.executable).parent
CRON = "0 2 * * *"
TIMEZONE = "Asia/Shanghai"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without any Prefect setting of the test session, offline, with its own PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.update(extra)
    return env


@contextmanager
def background(command: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
               ) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session; on exit SIGTERM to its group, SIGKILL after 20 s."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, cwd=cwd or log.parent, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            yield process
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    except ProcessLookupError:
        return


def wait_for(check: Callable[[], Any], what: str, timeout: float, watch: dict[str, tuple[subprocess.Popen[bytes], Path]]
             ) -> Any:
    """Poll ``check`` until it returns something truthy; fail early (with the log) if a watched process died."""
    deadline = time.monotonic() + timeout
    while True:
        for name, (process, log) in watch.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited ({process.returncode}) while waiting for {what}:\n"
                            + log.read_text(errors="replace")[-4000:])
        try:
            value = check()
        except Exception:  # not up yet: connection refused, 404 ...
            value = None
        if value:
            print(f"{what}: after {timeout - (deadline - time.monotonic()):.1f} s")  # shown when a test fails
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n}\n" + log.read_text(errors="replace")[-3000:] for n, (_, log) in watch.items())
            pytest.fail(f"no {what} after {timeout:.0f} s\n{logs}")
        time.sleep(0.5)


def server_healthy(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
        return bool(answer.status == 200)


def copy_migrated_database(home: Path) -> bool:
    """Put a copy of the session test server's database (migrated already) in ``home``: migrating a fresh one
    costs a 2-core machine 15-50 s. False if that database is not a SQLite file."""
    import sqlite3

    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    text = url.get_secret_value() if url is not None else ""
    prefix = "sqlite+aiosqlite:///"
    if not text.startswith(prefix) or not Path(text[len(prefix):]).exists():
        return False
    home.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(text[len(prefix):])
    target = sqlite3.connect(home / "prefect.db")
    try:
        source.backup(target)  # consistent even while the test server writes
    finally:
        target.close()
        source.close()
    return True


@contextmanager
def running_prefect_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, tuple[subprocess.Popen[bytes], Path]]]]:
    """``prefect server start`` on 127.0.0.1 at a free port, home and database in tmp_path; yields its API URL.
    Services are off: deployments and schedules are registered without them, and triggered runs start at once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "server.log"
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui",
               "--no-services", "--analytics-off"]
    home = tmp_path / "server-home"
    env = clean_env(home)
    if copy_migrated_database(home):
        env["PREFECT_SERVER_DATABASE_MIGRATE_ON_START"] = "false"
    with background(command, env, log) as process:
        watch = {"prefect server": (process, log)}
        wait_for(lambda: server_healthy(url), "healthy Prefect server", 240, watch)
        yield url, watch


def variant_archive(root: Path, count: int) -> Path:
    text = SEED.read_text(encoding="utf-8")
    root.mkdir(parents=True)
    for i in range(count):
        renamed = text.replace("项目名称\tG60科创走廊建设", f"项目名称\tG60科创走廊建设{i}期", 1)
        (root / f"doc{i}.txt").write_text(renamed, encoding="utf-8")
    return root


@pytest.mark.server
def test_served_deployments_run_on_demand_and_keep_the_schedule(prefect_server: None, tmp_path: Path) -> None:
    require_shared()
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipeline.store import StateStore

    archive = variant_archive(tmp_path / "archive", 2)
    out = tmp_path / "out"
    with running_prefect_server(tmp_path) as (url, watch):
        serve_log = tmp_path / "serve.log"
        command = [str(BIN / "formrescue"), "serve", "--archive", str(archive), "--out", str(out), "--cron", CRON,
                   "--timezone", TIMEZONE]
        # Documents in threads of each flow run's process: no worker processes to start on a 2-core machine
        # (worker processes under an ingest are covered by test_archive).
        env = clean_env(tmp_path / "serve-home", PREFECT_API_URL=url, FORMRESCUE_ISOLATION="thread")
        with background(command, env, serve_log) as serve, temporary_settings(updates={PREFECT_API_URL: url}):
            watch["formrescue serve"] = (serve, serve_log)
            with get_client(sync_client=True) as client:
                deployment = wait_for(lambda: client.read_deployment_by_name("rerun/manual"), "served deployments",
                                      120, watch)
                nightly = client.read_deployment_by_name("ingest-archive/nightly")
            assert deployment.parameters["out"] == str(out)
            assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in nightly.schedules] == [
                (CRON, TIMEZONE, True)]
            assert nightly.parameters["archive"] == str(archive)

            started = time.monotonic()
            run = run_deployment("ingest-archive/nightly", timeout=240, poll_interval=1)
            print(f"ingest-archive/nightly: {time.monotonic() - started:.1f} s")
            assert run.state is not None and run.state.is_completed(), (run.state, serve_log.read_text()[-3000:])
            store = StateStore.for_output(out)
            assert sorted(Path(d.source).name for d in store.documents()) == ["doc0.txt", "doc1.txt"]
            assert len((out / "forms.jsonl").read_text(encoding="utf-8").splitlines()) == 4

            # As `prefect deployment run 'rerun/manual' --param status=needs_review --param source_glob='*doc1*'`.
            started = time.monotonic()
            run = run_deployment("rerun/manual", parameters={"status": "needs_review", "source_glob": "*doc1*"},
                                 timeout=240, poll_interval=1)
            print(f"rerun/manual: {time.monotonic() - started:.1f} s")
            assert run.state is not None and run.state.is_completed(), (run.state, serve_log.read_text()[-3000:])
            attempts = {Path(d.source).name: d.attempts for d in store.documents()}
            assert attempts == {"doc0.txt": 1, "doc1.txt": 2}
            from flows.archive import review_flow

            if review_flow() is not None:
                with get_client(sync_client=True) as client:
                    review = client.read_deployment_by_name("apply-review/manual")
                assert review.parameters == {"out": str(out)}


def test_serve_refuses_without_a_prefect_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    (tmp_path / "archive").mkdir()
    code = main(["serve", "--archive", str(tmp_path / "archive"), "--out", str(tmp_path / "out")])
    assert code == EXIT_USAGE
    assert "needs a Prefect server" in capsys.readouterr().err
