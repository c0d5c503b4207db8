"""Measuring instruments of the benchmark: database query counts, process memory and a sandbox process."""

import json
import os
import resource
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

REPO = Path(__file__).resolve().parent.parent
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SANDBOX_START_TIMEOUT_SECONDS = 30


class QueryCounter:
    """Counts SQL statements run through Django, from any thread that installed it."""

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, execute, sql, params, many, context):
        with self._lock:
            self.count += 1
        return execute(sql, params, many, context)

    @contextmanager
    def installed(self):
        """Count the queries of the current thread's database connection inside the block."""
        from django.db import connection

        with connection.execute_wrapper(self):
            yield self


def rss_bytes() -> int:
    """Return this process's resident set size now."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def peak_rss_bytes() -> int:
    """Return this process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class SandboxProcess:
    """The bundled Marketo sandbox in its own process, so its in-memory data isn't counted in ours.

    It runs `manage.py marketo_sandbox` with Marketo's limits (100 calls per
    20 s, 10 concurrent, 50,000 calls a day) and a fresh daily quota.
    """

    def __init__(self, *, log_path: Path):
        self.log_path = log_path
        self.process = None
        self.url = ""

    def start(self) -> "SandboxProcess":
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", "LOG_LEVEL": "WARNING"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), "marketo_sandbox", "--port", "0"],
            cwd=REPO,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

        deadline = time.monotonic() + SANDBOX_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if "listening on" in line:
                self.url = line.rsplit(" ", 1)[1].strip()
                return self
        self.stop()
        raise RuntimeError(f"The Marketo sandbox did not start within {SANDBOX_START_TIMEOUT_SECONDS} s; see {self.log_path}.")

    def state(self) -> dict:
        """Return the sandbox's whole state (GET /_sandbox/state)."""
        with urlopen(f"{self.url}/_sandbox/state", timeout=120) as response:
            return json.loads(response.read())["state"]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if getattr(self, "_log", None) is not None:
            self._log.close()


def counted_calls(state: dict) -> int:
    """Return the calls the sandbox counted today against its daily quota, for every API user."""
    return sum(state["usage"]["calls_today_by_user"].values())
