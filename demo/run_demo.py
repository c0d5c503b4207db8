"""End-to-end demo: sample Docket events written into the bundled Marketo sandbox.

The demo starts from a fresh demo database and starts the sandbox, seeded
with the Docket channel, an API client and Munchkin id 417-QWE-902. It
creates an organization, connects it and applies the default agent
configuration. Then it ingests and drains the sample events twice and
prints what Marketo contains. The second pass must write nothing, because
every event is a duplicate.

Run it with `make demo`, or `python demo/run_demo.py` inside the virtualenv.
"""

import io
import os
import socket
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "demo"
DATABASE = REPO / "var" / "demo.sqlite3"
ORGANIZATION = "corvane"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _configure_environment(port: int):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "true")
    os.environ["DATABASE_URL"] = f"sqlite:///{DATABASE}"
    # The demo lists only its own sandbox origin, as a customer would list theirs.
    os.environ["MARKETO_ALLOWED_BASE_URLS"] = f"http://127.0.0.1:{port}"
    # The demo drains everything itself; nothing waits for a batch window.
    os.environ.setdefault("WRITEBACK_BATCH_WINDOW_SECONDS", "0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO))


def _run(command: str, *args, **options) -> str:
    from django.core.management import call_command

    output = io.StringIO()
    call_command(command, *args, stdout=output, **options)
    return output.getvalue()


def _step(title: str):
    print(f"\n== {title}")


def main() -> int:
    port = _free_port()
    _configure_environment(port)
    DATABASE.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DATABASE}{suffix}").unlink(missing_ok=True)

    import django

    django.setup()
    from integrations.marketo.sandbox.server import SandboxServer

    _step("Preparing a fresh demo database")
    _run("migrate", verbosity=0)

    sandbox = SandboxServer(port=port)
    sandbox.start()
    print(f"Marketo sandbox running at {sandbox.url} (Munchkin id 417-QWE-902)")
    try:
        return _demo(sandbox)
    finally:
        sandbox.stop()


def _demo(sandbox) -> int:
    _step("Creating the organization")
    print(_run("create_organization", ORGANIZATION, name="Corvane").splitlines()[0])

    _step("Connecting Marketo")
    print(
        _run(
            "connect_marketo",
            org=ORGANIZATION,
            munchkin_id="417-QWE-902",
            client_id="docket-demo-client",
            client_secret="docket-demo-secret",
            base_url=sandbox.url,
        ).rstrip()
    )

    _step("Applying the default agent configuration")
    print(_run("apply_writeback_config", str(DEMO_DIR / "writeback-config.json"), org=ORGANIZATION).rstrip())

    calls_before = sandbox.state.calls_today()
    leads_before = len(sandbox.state.dump()["leads"])
    passes = []
    for number in (1, 2):
        _step(f"Pass {number}: ingesting the sample events and draining the writeback")
        print(_run("ingest_events", str(DEMO_DIR / "events.jsonl"), org=ORGANIZATION).rstrip())
        before = _marketo_counts(sandbox)
        print(_run("drain_writeback", org=ORGANIZATION, timeout=120).rstrip())
        passes.append((before, _marketo_counts(sandbox)))

    return _summary(sandbox, passes, calls_before, leads_before)


def _marketo_counts(sandbox) -> dict:
    state = sandbox.state.dump()
    return {
        "leads": len(state["leads"]),
        "activities": len(state["activities"]),
        "members": sorted((member["programId"], member["leadId"], member["statusName"]) for member in state["program_members"]),
    }


def _summary(sandbox, passes, calls_before, leads_before) -> int:
    state = sandbox.state.dump()
    type_names = {
        item["id"]: (item["approved"] or item["draft"])["name"] for item in state["activity_types"]
    }
    programs = {item["id"]: item["name"] for item in state["programs"]}

    _step("Summary of what Marketo contains")
    created = len(state["leads"]) - leads_before
    print(f"Leads: {len(state['leads'])} ({created} written by Docket, {leads_before} already in the sandbox seed)")
    activities = Counter(type_names.get(item["activityTypeId"], item["activityTypeId"]) for item in state["activities"])
    for name, count in sorted(activities.items()):
        print(f"Activities, {name}: {count}")
    members = Counter((programs.get(item["programId"], item["programId"]), item["statusName"]) for item in state["program_members"])
    for (program, status), count in sorted(members.items()):
        print(f"Program members, {program} at {status}: {count}")
    calls_total = sandbox.state.calls_today()
    print(f"Marketo calls used: {calls_total} in all, {calls_before} by connection setup and configuration, "
          f"{calls_total - calls_before} by the writeback")

    first, second = passes
    second_wrote_nothing = second[0] == second[1]
    print("Second pass wrote nothing: " + ("yes" if second_wrote_nothing else "NO"))
    return 0 if second_wrote_nothing else 1


if __name__ == "__main__":
    sys.exit(main())
