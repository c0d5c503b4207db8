"""Read Docket events from a file into the store and queue their writeback."""

import sys

from django.core.management.base import BaseCommand, CommandError

from agents.event_files import EventFileError, read_events
from agents.ingest import ingest_events
from agents.models import Organization


class Command(BaseCommand):
    help = "Read Docket events (JSON Lines or a JSON array; - for stdin) into the store and queue their writeback."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization the events belong to.")
        parser.add_argument("file", help="Path to the events file, or - to read standard input.")

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"Organization {options['org']!r} not found; create it with create_organization.")

        path = options["file"]
        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        except OSError as error:
            raise CommandError(f"Can't read {path!r}: {error.strerror}.") from None
        except UnicodeDecodeError:
            raise CommandError(f"{path!r} is not UTF-8 text; save it as UTF-8 JSON Lines.") from None

        try:
            events, line_numbers, unreadable = read_events(text)
        except EventFileError as error:
            raise CommandError(str(error)) from None

        report = ingest_events(organization, events)
        self.stdout.write(
            f"accepted {report.accepted}, duplicates {report.duplicates}, "
            f"rejected {len(report.rejected) + len(unreadable)}"
        )
        for line in unreadable:
            self.stdout.write(f"  rejected: {line['reason']}")
        for item in report.rejected:
            self.stdout.write(
                f"  rejected: line {line_numbers[item['index']]} (event_id {item['event_id'] or 'missing'}): "
                f"{item['field']} {item['reason']}"
            )
        for item in report.warnings:
            self.stdout.write(f"  warning: event_id {item['event_id']}: {item['warning']}")
