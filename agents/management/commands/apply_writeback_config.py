"""Create or update agents' writeback configuration from a JSON file."""

import json

from django.core.management.base import BaseCommand, CommandError

from agents.models import Organization
from agents.writeback_config import ConfigError, apply_config


class Command(BaseCommand):
    help = (
        "Create or update agents' writeback configuration from JSON, through the same validation as the "
        "settings pages. All or nothing: one problem rejects the whole file."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument("file", help="Path to the configuration JSON file, or - for standard input.")

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"Organization {options['org']!r} not found.")

        path = options["file"]
        try:
            if path == "-":
                import sys

                document = json.load(sys.stdin)
            else:
                with open(path, encoding="utf-8") as handle:
                    document = json.load(handle)
        except OSError as error:
            raise CommandError(f"Can't read {path!r}: {error.strerror}.") from None
        except json.JSONDecodeError as error:
            raise CommandError(f"{path!r} is not valid JSON: {error.msg} at line {error.lineno}.") from None

        try:
            agents = apply_config(organization, document, actor="apply_writeback_config")
        except ConfigError as error:
            lines = [f"The configuration was rejected; nothing changed ({len(error.problems)} problems):"]
            lines += [f"  {problem}" for problem in error.problems]
            raise CommandError("\n".join(lines)) from None

        self.stdout.write(f"Applied the writeback configuration of {len(agents)} agents to {organization.slug!r}.")
