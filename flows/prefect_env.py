"""Prefect's environment for formrescue, set before Prefect is imported.

Embedded mode (no ``PREFECT_API_URL``): flows run on Prefect's temporary local server, under a
project-local ``PREFECT_HOME``, offline and without telemetry. Its start-up is the cost of every CLI run,
so the server's background services (scheduler, late runs …: useless for one run) are off, its database
is migrated only when Prefect's version changed, and the server is started in the background as soon as
the CLI starts, while the pipeline loads its models.

Server mode (``PREFECT_API_URL`` set, e.g. ``prefect server start`` or a remote server): nothing is
changed; the flows talk to that server.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import TextIO

from pipeline.config import repo_root

_OFFLINE = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",  # the default 20 s is too short on 2 busy cores
    "PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED": "false",
}
_ONE_RUN_SERVER = {
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_CLEANUP_RECONCILER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "[]",
}
_MIGRATED_MARKER = "formrescue-migrated-for"


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or repo_root() / ".prefect")


_home_lock: list[TextIO] = []  # held open for the life of the process


def _claim(home: Path) -> bool:
    """Hold an exclusive lock on the Prefect home for this process; False if another run holds it."""
    handle = (home / ".formrescue-embedded.lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    _home_lock.append(handle)
    return True


def embedded() -> bool:
    return not os.environ.get("PREFECT_API_URL")


def configure(quiet: bool = True) -> None:
    """Set Prefect's environment (values the user set are kept). Call before importing prefect."""
    for key, value in _OFFLINE.items():
        os.environ.setdefault(key, value)
    if quiet:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    if not embedded():
        return
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    if not _claim(home):
        # Another embedded run uses this home's database right now: two temporary servers on one SQLite
        # file lose task-run records. This run gets a private home (its first start migrates a fresh
        # database: slower, but nothing is lost). Concurrent work belongs on one `prefect server start`.
        busy = home
        home = Path(tempfile.mkdtemp(prefix="formrescue-prefect-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        os.environ["PREFECT_HOME"] = str(home)
        print(f"formrescue: another run uses {busy}; this one uses its own Prefect home {home} "
              "(for concurrent runs, start a Prefect server and set PREFECT_API_URL)", file=sys.stderr)
        _claim(home)
    os.environ.setdefault("PREFECT_HOME", str(home))
    for key, value in _ONE_RUN_SERVER.items():
        os.environ.setdefault(key, value)
    if _migrated_version(home) == _installed_prefect_version():
        os.environ.setdefault("PREFECT_SERVER_DATABASE_MIGRATE_ON_START", "false")


def _installed_prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


def _migrated_version(home: Path) -> str | None:
    marker = home / _MIGRATED_MARKER
    database = home / "prefect.db"
    if not marker.exists() or not database.exists():
        return None
    return marker.read_text(encoding="utf-8").strip() or None


def mark_migrated() -> None:
    """After a server started with migrations, later starts may skip them (until Prefect is upgraded)."""
    if embedded():
        (prefect_home() / _MIGRATED_MARKER).write_text(_installed_prefect_version(), encoding="utf-8")


_server_thread: threading.Thread | None = None
_server_error: list[BaseException] = []


def start_server_in_background() -> None:
    """Start the embedded server now, so its start-up overlaps loading models; flows reuse it."""
    global _server_thread
    if not embedded() or _server_thread is not None:
        return

    def start() -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()
            mark_migrated()
        except BaseException as exc:  # reported by wait_for_server, in the main thread
            _server_error.append(exc)

    _server_thread = threading.Thread(target=start, name="prefect-embedded-server", daemon=True)
    _server_thread.start()


def wait_for_server() -> None:
    if _server_thread is not None:
        _server_thread.join()
    if _server_error:
        raise RuntimeError(f"Prefect's embedded server did not start: {_server_error[0]}") from _server_error[0]
