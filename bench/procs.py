"""Contender processes: started once (engine loaded once), fed one document at a time over a pipe.

Every contender runs in its own long-lived process so the benchmark can interleave contenders document by
document (machine load drifts; interleaving spreads it over all of them) while only one of them works at a
time. Start-up is timed from spawn to the worker's ``READY`` line.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]


class ContenderFailed(RuntimeError):
    pass


@dataclass
class ContenderProcess:
    name: str
    command: list[str]
    log_path: Path
    nice: int = 10
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    ready: dict[str, Any] = field(default_factory=dict)
    startup_s: float = 0.0
    _log: IO[str] | None = None

    def start(self) -> dict[str, Any]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a", encoding="utf-8")
        cmd = (["nice", "-n", str(self.nice)] if self.nice else []) + self.command
        t0 = time.perf_counter()
        self.process = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._log, text=True, encoding="utf-8", bufsize=1,
                                        env={**os.environ, **self.env})
        self.ready = self._read("READY ")
        self.startup_s = time.perf_counter() - t0
        return self.ready

    def _read(self, prefix: str) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(prefix):
                answer: dict[str, Any] = json.loads(line[len(prefix):])
                return answer
            if self._log is not None:  # library chatter on stdout goes to the log
                self._log.write(line)
        code = self.process.wait()
        raise ContenderFailed(f"{self.name} exited ({code}) before answering; see {self.log_path}")

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(payload, ensure_ascii=False) + "\n")
        self.process.stdin.flush()
        return self._read("RESULT ")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            if self.process.stdin is not None and self.process.poll() is None:
                self.process.stdin.write('{"cmd": "quit"}\n')
                self.process.stdin.close()
            self.process.wait(timeout=30)
        except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        if self._log is not None:
            self._log.close()
