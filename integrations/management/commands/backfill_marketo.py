"""Queue writeback for stored conversations and meetings whose writes never succeeded."""

import sys
from datetime import date, datetime, time, timezone

from django.core.management.base import BaseCommand, CommandError

from agents.models import Organization
from integrations.writeback.backfill import backfill
from integrations.writeback.queueing import queue_flush_after_commit


class Command(BaseCommand):
    help = (
        "Queue writeback for stored conversations and meetings whose writes never succeeded (dead-lettered, or "
        "never attempted because the agent was off). --force also re-syncs lead fields and program statuses; "
        "an activity already confirmed in Marketo is never sent again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument("--agent", help="Only this agent id.")
        parser.add_argument("--since", help="Only events that occurred on or after this date (YYYY-MM-DD, UTC).")
        parser.add_argument("--dry-run", action="store_true", help="Print what would be queued; change nothing.")
        parser.add_argument("--force", action="store_true", help="Also re-sync lead fields and program statuses already written.")

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"Organization {options['org']!r} not found.")

        since = None
        if options["since"]:
            try:
                since = datetime.combine(date.fromisoformat(options["since"]), time.min, tzinfo=timezone.utc)
            except ValueError:
                raise CommandError(f"--since {options['since']!r} is not a date like 2026-11-01.") from None

        def progress(done, total):
            width = 30
            filled = width * done // max(total, 1)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} events")
            if done == total:
                sys.stderr.write("\n")

        report = backfill(
            organization,
            agent_id=options["agent"],
            since=since,
            dry_run=options["dry_run"],
            force=options["force"],
            progress=progress,
        )
        prefix = "Would queue" if options["dry_run"] else "Queued"
        self.stdout.write(
            f"{prefix}: {report.requeued} failed or unevaluated writes again, {report.planned} never attempted, "
            f"{report.forced} forced re-syncs, over {report.events} events."
        )
        if not options["dry_run"] and (report.requeued or report.planned or report.forced):
            queue_flush_after_commit(organization.pk)
