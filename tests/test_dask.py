"""Scale-out: an ingest whose document tasks run on a Dask cluster (a scheduler and two workers started here as
separate processes on 127.0.0.1) writes the same outputs as a local run. The workers report to the session's
Prefect test server, as real workers report to a shared ``prefect server``. Also: what travels to a worker
(task arguments and results) pickles cleanly."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from flows.cli import EXIT_OK, main
from tests.conftest import require_shared
from tests.test_serve import BIN, background, clean_env, free_port, variant_archive, wait_for

OUTPUTS = ("forms.jsonl", "projects.csv", "indicators.csv", "review_queue.csv")


@pytest.mark.server
def test_ingest_on_a_dask_cluster_matches_a_local_run(prefect_server: None, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    require_shared()
    from distributed import Client
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    assert api_url, "the session's Prefect test server has no URL"
    archive = variant_archive(tmp_path / "archive", 3)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    # Workers run elsewhere (here: another directory), with only the server's address in common.
    env = clean_env(tmp_path / "worker-home", PREFECT_API_URL=api_url)
    scheduler_log = tmp_path / "scheduler.log"
    worker_logs = [tmp_path / f"worker{i}.log" for i in (1, 2)]
    scheduler_cmd = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    with background(scheduler_cmd, env, scheduler_log) as scheduler:
        watch = {"dask scheduler": (scheduler, scheduler_log)}
        with background(_worker(address, 1), env, worker_logs[0]) as w1, \
                background(_worker(address, 2), env, worker_logs[1]) as w2:
            watch.update({"dask worker 1": (w1, worker_logs[0]), "dask worker 2": (w2, worker_logs[1])})

            def two_workers() -> bool:
                with Client(address, timeout=5) as client:
                    return len(client.scheduler_info(n_workers=-1)["workers"]) == 2

            wait_for(two_workers, "two Dask workers", 120, watch)
            monkeypatch.setenv("PREFECT_API_URL", api_url)  # server mode, as --dask-address requires
            out_dask = tmp_path / "out-dask"
            assert main(["ingest", str(archive), "--out", str(out_dask), "--dask-address", address,
                         "--no-progress"]) == EXIT_OK
        ran_there = sum(log.read_text(errors="replace").count("process-document") for log in worker_logs)
        assert ran_there >= 3, [log.read_text(errors="replace")[-2000:] for log in worker_logs]

    out_local = tmp_path / "out-local"
    assert main(["ingest", str(archive), "--out", str(out_local), "--no-progress"]) == EXIT_OK
    for name in OUTPUTS:
        assert (out_dask / name).read_bytes() == (out_local / name).read_bytes(), name


def _worker(address: str, number: int) -> list[str]:
    # One thread, no nanny: each worker is one process loading the engines once; stopping it stops it all.
    return [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
            "--name", f"formrescue-{number}"]


def test_task_arguments_and_results_pickle(tmp_path: Path) -> None:
    require_shared()
    import cloudpickle

    import flows.process
    from pipeline.config import Settings
    from pipeline.process import process_file

    archive = variant_archive(tmp_path / "archive", 1)
    settings = Settings.from_env()
    result = process_file(archive / "doc0.txt", "doc0.txt", settings)
    assert result.forms
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
        assert loads(dumps(settings)) == settings
        assert loads(dumps(settings)).fingerprint() == settings.fingerprint()
        assert loads(dumps(result)) == result
    assert cloudpickle.loads(cloudpickle.dumps(flows.process.process_document)).name == "process-document"
