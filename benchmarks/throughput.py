#!/usr/bin/env python
"""Measure the writeback's Marketo API economy, throughput, database queries and memory.

Runs, each in its own process with an empty database and a fresh Marketo
sandbox process (Marketo's limits: 100 calls per 20 s, 10 concurrent,
50,000 calls a day):

- bulk: N conversations of distinct visitors ingested in webhook-sized
  requests, then drained through `drain_writeback`'s code path, once per
  size in --bulk (two sizes show whether memory grows with N);
- bulk_worker: the same ingest while a worker thread runs the flush task,
  as production workers do, once per size in --bulk-worker;
- bulk_worker_process: the same ingest while a separate worker process
  (spawned, with its own database connection) runs the flush task, as the
  web and django-q2 worker processes of a deployment do, once per size in
  --bulk-worker-process;
- one-at-a-time: conversations ingested and flushed one event at a time
  with the batch window at 0;
- steady: conversations ingested at --steady-rate per second for
  --steady-seconds while a worker thread runs the flush task with the
  configured batch window.

Usage (from the repository root, inside .venv):

    .venv/bin/python benchmarks/throughput.py
    .venv/bin/python benchmarks/throughput.py --database-url postgres://postgres@127.0.0.1:5432/docket_bench

A PostgreSQL database given with --database-url is dropped and created
again for every run, so its name must contain "bench".
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RESULT_MARKER = "BENCHMARK-RESULT "
WORK_DIR = REPO / "var" / "bench"
# Marketo's Lead Database batch size, and the calls one batch of
# conversations costs with this configuration: Get Leads (the fill-if-empty
# read), Sync Leads, Add Custom Activities, Sync Program Member Status.
RECORDS_PER_CALL = 300
CALLS_PER_BATCH = 4


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL of a database the benchmark may drop (name containing 'bench'); default: a SQLite file per run under var/bench/.")
    parser.add_argument("--redis-url", help="Redis URL for the shared rate limiter and the broker; default: none (database limiter, ORM broker).")
    parser.add_argument("--bulk", default="2000,10000", help="Comma-separated conversation counts for bulk runs (default 2000,10000); empty skips them.")
    parser.add_argument("--bulk-worker", default="10000", help="Comma-separated conversation counts for bulk runs flushed by a worker during the ingest (default 10000); empty skips them.")
    parser.add_argument("--bulk-worker-process", default="10000", help="Comma-separated conversation counts for bulk runs flushed by a separate worker process during the ingest (default 10000); empty skips them.")
    parser.add_argument("--single", type=int, default=300, help="Conversations in the one-at-a-time run (default 300; 0 skips it).")
    parser.add_argument("--steady-rate", type=float, default=5.0, help="Conversations per second in the steady run (default 5).")
    parser.add_argument("--steady-seconds", type=float, default=120.0, help="Length of the steady run in seconds (default 120; 0 skips it).")
    parser.add_argument("--output", type=Path, help="Also write every result as JSON to this file.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.child:
        return _run_child(json.loads(options.child))

    if options.database_url and "bench" not in (urlsplit(options.database_url).path or ""):
        parser.error("--database-url must name a database containing 'bench', because every run drops and recreates it.")

    runs = [{"scenario": "bulk", "count": int(size)} for size in options.bulk.split(",") if size.strip()]
    runs += [{"scenario": "bulk_worker", "count": int(size)} for size in options.bulk_worker.split(",") if size.strip()]
    runs += [
        {"scenario": "bulk_worker_process", "count": int(size)}
        for size in options.bulk_worker_process.split(",")
        if size.strip()
    ]
    if options.single:
        runs.append({"scenario": "one_at_a_time", "count": options.single})
    if options.steady_seconds:
        runs.append({"scenario": "steady", "rate": options.steady_rate, "seconds": options.steady_seconds})

    results = []
    for run in runs:
        run.update(database_url=options.database_url or "", redis_url=options.redis_url or "")
        print(f"Running {_label(run)} ...", flush=True)
        result = _spawn(run)
        results.append(result)
        print(json.dumps(result, indent=2), flush=True)

    print()
    print(_summary(results))
    if options.output:
        options.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def _label(run: dict) -> str:
    if run["scenario"] == "steady":
        return f"steady ({run['rate']:g}/s for {run['seconds']:g} s)"
    return f"{run['scenario']} ({run['count']} conversations)"


def _spawn(run: dict) -> dict:
    """Run one measurement in a child process and return its result."""
    started = time.time()
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(run)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"{_label(run)} failed with exit code {completed.returncode}; its output:\n{completed.stdout}")
    result = json.loads(lines[-1][len(RESULT_MARKER):])
    result["run_seconds"] = time.time() - started
    return result


def _run_child(run: dict) -> int:
    from cryptography.fernet import Fernet

    from benchmarks.instruments import SandboxProcess

    name = run["scenario"] if run["scenario"] == "steady" else f"{run['scenario']}-{run['count']}"
    sandbox = SandboxProcess(log_path=WORK_DIR / f"sandbox-{name}.log").start()
    try:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DEBUG="false",
            SECRET_KEY="benchmark-only-secret-key",
            FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            LOG_LEVEL="WARNING",
            MARKETO_ALLOWED_BASE_URLS=sandbox.url,
            DATABASE_URL=_fresh_database(run["database_url"], name),
        )
        if run["redis_url"]:
            os.environ["REDIS_URL"] = run["redis_url"]
        else:
            os.environ.pop("REDIS_URL", None)

        import django

        django.setup()
        result = _measure(run, sandbox)
    finally:
        sandbox.stop()

    from django.db import connection

    result.update(scenario=run["scenario"], database=connection.vendor, redis=bool(run["redis_url"]))
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


def _measure(run: dict, sandbox) -> dict:
    from benchmarks import scenarios

    if run["scenario"] == "bulk":
        return scenarios.run_bulk(sandbox, run["count"])
    if run["scenario"] == "bulk_worker":
        return scenarios.run_bulk(sandbox, run["count"], with_worker=True)
    if run["scenario"] == "bulk_worker_process":
        return scenarios.run_bulk(sandbox, run["count"], worker_process=True)
    if run["scenario"] == "one_at_a_time":
        return scenarios.run_one_at_a_time(sandbox, run["count"])
    return scenarios.run_steady(sandbox, run["rate"], run["seconds"])


def _fresh_database(database_url: str, name: str) -> str:
    """Return the URL of an empty database for one run."""
    if not database_url:
        path = WORK_DIR / f"{name}.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"

    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    database = parts.path.lstrip("/")
    maintenance = parts._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return database_url


def _summary(results: list[dict]) -> str:
    """Return a Markdown table of the headline numbers."""
    rows = [
        "| run | db | conversations | calls/conv | conv/s | ingest q/conv | flush q/conv | peak RSS MiB (growth) | delay p50 / p95 s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        label = result["scenario"]
        if result["scenario"] == "steady":
            label += f" (window {result['batch_window_seconds']:g} s)"
        speed = f"{result['conversations_per_second']:.1f}" if "conversations_per_second" in result else "-"
        delays = (
            f"{result['delay_p50_seconds']:.1f} / {result['delay_p95_seconds']:.1f}"
            if result.get("delay_p95_seconds") is not None
            else "-"
        )
        rows.append(
            f"| {label} | {result['database']} | {result['conversations']} | {result['calls_per_conversation']:.4f} "
            f"| {speed} | {result['ingest_queries_per_conversation']:.1f} | {result['flush_queries_per_conversation']:.1f} "
            f"| {result['peak_rss_mib']:.0f} ({result['peak_growth_mib']:+.0f}) | {delays} |"
        )
    bound = 50 / 20 * RECORDS_PER_CALL / CALLS_PER_BATCH
    rows.append("")
    rows.append(
        f"Bound set by the default rate share: 50 calls / 20 s x {RECORDS_PER_CALL} records per call / "
        f"{CALLS_PER_BATCH} calls per {RECORDS_PER_CALL} conversations = {bound:.1f} conversations/s."
    )
    for result in results:
        if result["scenario"] in ("bulk", "bulk_worker", "bulk_worker_process"):
            rows.append(
                f"{result['scenario']} {result['conversations']} on {result['database']}: "
                f"{result['conversations_per_second'] / bound:.0%} of that bound."
            )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
