"""The three writeback runs the benchmark measures: bulk, one at a time, and a steady stream.

Each run starts from an empty database and a fresh sandbox, sets up the
connection the way `connect_marketo` and `apply_writeback_config` do, and
counts Marketo calls only from the end of that setup.
"""

import contextlib
import itertools
import multiprocessing
import statistics
import threading
import time
from datetime import UTC, datetime

from benchmarks.instruments import QueryCounter, counted_calls, peak_rss_bytes, rss_bytes
from benchmarks.workload import conversation_events, writeback_config

# A webhook request carries up to this many events in the bulk run.
INGEST_REQUEST_EVENTS = 100
# Maximum seconds the bulk drain and the steady run's final flush may take.
DRAIN_TIMEOUT_SECONDS = 1800
STEADY_SETTLE_TIMEOUT_SECONDS = 120
# Pause between two flush tasks of the steady run's worker, as django-q2's poll interval.
WORKER_POLL_SECONDS = 0.5
# Maximum seconds a worker process may take to finish its flush task and exit.
WORKER_STOP_TIMEOUT_SECONDS = 360


def prepare_connection(sandbox_url: str):
    """Migrate the empty database, create an organization, connect it to the sandbox and apply the configuration."""
    from django.core.management import call_command

    from agents.models import Organization
    from agents.writeback_config import apply_config
    from integrations.marketo.connect import connect_marketo

    call_command("migrate", verbosity=0)
    organization = Organization(slug="bench", name="Benchmark")
    organization.issue_ingest_token()
    organization.save()
    connect_marketo(
        organization,
        munchkin_id="417-QWE-902",
        client_id="docket-demo-client",
        client_secret="docket-demo-secret",
        base_url=sandbox_url,
    )
    apply_config(organization, writeback_config())
    organization.refresh_from_db()
    return organization, organization.marketo_connection


class FlushWorker:
    """A thread that runs the flush task again and again, as one django-q2 worker does while work arrives."""

    def __init__(self, connection_id: int, queries: QueryCounter):
        self.connection_id = connection_id
        self.queries = queries
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-flush-worker", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join(timeout=120)

    def _run(self):
        from django.db import connection as db_connection

        from integrations.writeback.tasks import flush_connection_task

        try:
            with self.queries.installed():
                while not self.stop.is_set():
                    flush_connection_task(self.connection_id)
                    self.stop.wait(WORKER_POLL_SECONDS)
        finally:
            db_connection.close()


def _flush_worker_process(connection_id: int, stop, results):
    """Run the flush task over and over in a spawned process until `stop` is set.

    Put the number of SQL statements it ran and the process's peak RSS on
    the `results` queue. The process inherits DATABASE_URL and the other
    settings from the benchmark's environment, so it works on the same
    database as the ingest, as a django-q2 worker process does.
    """
    import django

    django.setup()

    from django.db import connection as db_connection

    from integrations.writeback.tasks import flush_connection_task

    queries = QueryCounter()
    try:
        with queries.installed():
            while not stop.is_set():
                flush_connection_task(connection_id)
                stop.wait(WORKER_POLL_SECONDS)
    finally:
        db_connection.close()
        results.put({"queries": queries.count, "peak_rss_bytes": peak_rss_bytes()})


class FlushWorkerProcess:
    """A separate process that runs the flush task again and again, as a django-q2 worker process does.

    Unlike `FlushWorker`, it doesn't share the ingest's interpreter lock, so
    ingest and flush can run on two cores at once, as the web and worker
    processes of a deployment do.
    """

    def __init__(self, connection_id: int):
        # Spawn, not fork: a forked child would inherit the parent's open
        # database connection and Django state.
        context = multiprocessing.get_context("spawn")
        self.stop = context.Event()
        self.results = context.Queue()
        self.process = context.Process(
            target=_flush_worker_process,
            args=(connection_id, self.stop, self.results),
            name="bench-flush-worker-process",
        )
        self.queries = 0
        self.peak_rss_bytes = 0

    def __enter__(self):
        self.process.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        # The current flush task ends first: it stops starting batches after
        # its time budget (django-q2's 300 s timeout minus 60 s).
        result = self.results.get(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        self.process.join(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
        self.queries = result["queries"]
        self.peak_rss_bytes = result["peak_rss_bytes"]


def wait_until_settled(timeout_seconds: float) -> int:
    """Wait until no writeback record is pending or in flight; return how many still are."""
    from integrations.models import WritebackRecord

    open_records = WritebackRecord.objects.filter(
        status__in=[WritebackRecord.Status.PENDING, WritebackRecord.Status.IN_FLIGHT]
    )
    deadline = time.time() + timeout_seconds
    while time.time() < deadline and open_records.exists():
        time.sleep(0.2)
    return open_records.count()


def run_bulk(sandbox, count: int, *, with_worker: bool = False, worker_process: bool = False) -> dict:
    """Ingest `count` conversations in webhook-sized requests, then drain the writeback.

    `with_worker` flushes with a worker thread running the flush task during
    the ingest, as production workers do, instead of draining afterwards.
    `worker_process` runs that worker in a separate process instead of a
    thread, as a deployment's django-q2 workers run apart from the web process.
    """
    from agents.ingest import ingest_events
    from integrations.writeback.drain import drain

    organization, connection = prepare_connection(sandbox.url)
    setup_usage = sandbox.state()["usage"]
    baseline_rss = rss_bytes()
    ingest_queries, flush_queries = QueryCounter(), QueryCounter()
    if worker_process:
        worker = FlushWorkerProcess(connection.pk)
    elif with_worker:
        worker = FlushWorker(connection.pk, flush_queries)
    else:
        worker = contextlib.nullcontext()

    started = time.time()
    with worker:
        with ingest_queries.installed():
            events = conversation_events(count, "bulk")
            while chunk := list(itertools.islice(events, INGEST_REQUEST_EVENTS)):
                ingest_events(organization, chunk)
        ingested = time.time()

        if with_worker or worker_process:
            pending = wait_until_settled(DRAIN_TIMEOUT_SECONDS)
        else:
            with flush_queries.installed():
                pending = drain(organization, timeout_seconds=DRAIN_TIMEOUT_SECONDS).pending
    drained = time.time()
    peak_rss = peak_rss_bytes()
    if worker_process:
        flush_queries.count = worker.queries

    state = sandbox.state()
    activities = state["activities"]
    last_activity = max(activity["createdAt"] for activity in activities) if activities else drained
    setup_calls = sum(setup_usage["calls_today_by_user"].values())
    calls = counted_calls(state) - setup_calls
    return {
        "conversations": count,
        "flush": _flush_mode(with_worker, worker_process),
        "activities": len(activities),
        # How far a worker kept up with the ingest; a drain starts after it, so 0.
        "activities_by_end_of_ingest": sum(1 for activity in activities if activity["createdAt"] <= ingested),
        "pending_after": pending,
        "setup_calls": setup_calls,
        "calls": calls,
        "calls_per_conversation": calls / count,
        "calls_by_path": _calls_by_path_since(setup_usage, state),
        "ingest_seconds": ingested - started,
        "drain_seconds": drained - ingested,
        "first_ingest_to_last_activity_seconds": last_activity - started,
        "conversations_per_second": count / (last_activity - started),
        "ingest_queries_per_conversation": ingest_queries.count / count,
        "flush_queries_per_conversation": flush_queries.count / count,
        "baseline_rss_mib": baseline_rss / 2**20,
        "peak_rss_mib": peak_rss / 2**20,
        "peak_growth_mib": (peak_rss - baseline_rss) / 2**20,
        "worker_process_peak_rss_mib": worker.peak_rss_bytes / 2**20 if worker_process else None,
    }


def _flush_mode(with_worker: bool, worker_process: bool) -> str:
    if worker_process:
        return "worker process during ingest"
    if with_worker:
        return "worker thread during ingest"
    return "drain after ingest"


def run_one_at_a_time(sandbox, count: int) -> dict:
    """Ingest and flush each conversation on its own, with no batch window."""
    from django.conf import settings

    from agents.ingest import ingest_events
    from integrations.writeback.flush import flush_connection

    organization, connection = prepare_connection(sandbox.url)
    settings.WRITEBACK_BATCH_WINDOW_SECONDS = 0
    setup_usage = sandbox.state()["usage"]
    baseline_rss = rss_bytes()
    ingest_queries, flush_queries = QueryCounter(), QueryCounter()

    started = time.time()
    for event in conversation_events(count, "single"):
        with ingest_queries.installed():
            ingest_events(organization, [event])
        with flush_queries.installed():
            flush_connection(connection.pk)
    finished = time.time()
    peak_rss = peak_rss_bytes()

    state = sandbox.state()
    activities = state["activities"]
    last_activity = max(activity["createdAt"] for activity in activities) if activities else finished
    setup_calls = sum(setup_usage["calls_today_by_user"].values())
    calls = counted_calls(state) - setup_calls
    return {
        "conversations": count,
        "activities": len(activities),
        "setup_calls": setup_calls,
        "calls": calls,
        "calls_per_conversation": calls / count,
        "calls_by_path": _calls_by_path_since(setup_usage, state),
        "first_ingest_to_last_activity_seconds": last_activity - started,
        "conversations_per_second": count / (last_activity - started),
        "ingest_queries_per_conversation": ingest_queries.count / count,
        "flush_queries_per_conversation": flush_queries.count / count,
        "baseline_rss_mib": baseline_rss / 2**20,
        "peak_rss_mib": peak_rss / 2**20,
        "peak_growth_mib": (peak_rss - baseline_rss) / 2**20,
    }


def run_steady(sandbox, rate_per_second: float, seconds: float) -> dict:
    """Ingest `rate_per_second` conversations a second while a worker thread runs flush tasks."""
    from agents.ingest import ingest_events
    from integrations.writeback.pacing import batch_window

    organization, connection = prepare_connection(sandbox.url)
    setup_usage = sandbox.state()["usage"]
    baseline_rss = rss_bytes()
    ingest_queries, flush_queries = QueryCounter(), QueryCounter()
    count = int(rate_per_second * seconds)

    ingest_started_at = {}
    started = time.time()
    with FlushWorker(connection.pk, flush_queries):
        with ingest_queries.installed():
            for index, event in enumerate(conversation_events(count, "steady", ended_at=datetime.now(UTC))):
                delay = started + index / rate_per_second - time.time()
                if delay > 0:
                    time.sleep(delay)
                ingest_started_at[event["conversation"]["id"]] = time.time()
                ingest_events(organization, [event])
        ingested = time.time()

        # Let the worker send what the last batch window still holds.
        pending = wait_until_settled(STEADY_SETTLE_TIMEOUT_SECONDS)
    peak_rss = peak_rss_bytes()

    state = sandbox.state()
    arrived = {activity["primaryAttributeValue"]: activity["createdAt"] for activity in state["activities"]}
    delays = sorted(arrived[key] - at for key, at in ingest_started_at.items() if key in arrived)
    setup_calls = sum(setup_usage["calls_today_by_user"].values())
    calls = counted_calls(state) - setup_calls
    return {
        "conversations": count,
        "activities": len(arrived),
        "pending_after": pending,
        "batch_window_seconds": batch_window(connection).total_seconds(),
        "ingest_seconds": ingested - started,
        "setup_calls": setup_calls,
        "calls": calls,
        "calls_per_conversation": calls / count,
        "calls_by_path": _calls_by_path_since(setup_usage, state),
        "delay_p50_seconds": _percentile(delays, 50),
        "delay_p95_seconds": _percentile(delays, 95),
        "delay_max_seconds": delays[-1] if delays else None,
        "delay_mean_seconds": statistics.fmean(delays) if delays else None,
        "ingest_queries_per_conversation": ingest_queries.count / count,
        "flush_queries_per_conversation": flush_queries.count / count,
        "baseline_rss_mib": baseline_rss / 2**20,
        "peak_rss_mib": peak_rss / 2**20,
        "peak_growth_mib": (peak_rss - baseline_rss) / 2**20,
    }


def _percentile(ordered: list[float], percent: float) -> float | None:
    """Return the nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, round(percent / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _calls_by_path_since(setup_usage: dict, state: dict) -> dict:
    """Return the counted calls made after setup, by REST path, most frequent first."""
    before = setup_usage["calls_by_path"]
    after = state["usage"]["calls_by_path"]
    made = {path: calls - before.get(path, 0) for path, calls in after.items() if calls > before.get(path, 0)}
    return dict(sorted(made.items(), key=lambda item: -item[1]))
