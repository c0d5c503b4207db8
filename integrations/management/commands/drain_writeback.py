"""Run queued writeback work in this process until none is left that can run before the timeout."""

from django.core.management.base import BaseCommand, CommandError

from agents.models import Organization
from integrations.writeback.drain import drain


def _format(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{action} {count}" for action, count in sorted(counts.items())) + ")"


class Command(BaseCommand):
    help = (
        "Run queued writeback in this process until nothing is left that can run before --timeout; "
        "prints what was written, skipped, failed and pending."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization's slug (default: every organization).")
        parser.add_argument(
            "--timeout", type=float, default=300.0, help="Seconds to keep running; default 300."
        )

    def handle(self, *args, **options):
        organization = None
        if options["org"]:
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"Organization {options['org']!r} not found.")
        if options["timeout"] <= 0:
            raise CommandError(f"--timeout must be a positive number of seconds, got {options['timeout']}.")

        report = drain(organization, timeout_seconds=options["timeout"])
        flush = report.flush
        self.stdout.write(f"written: {_format(flush.written)}")
        self.stdout.write(f"skipped: {_format(flush.skipped)}")
        self.stdout.write(f"failed: {_format(flush.failed)}")
        self.stdout.write(f"pending: {report.pending}")
        self.stdout.write(f"Marketo write calls: {flush.batches}")
        for slug, reason in report.paused.items():
            self.stdout.write(f"paused ({slug}): {reason}")
