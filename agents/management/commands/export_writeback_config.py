"""Print agents' writeback configuration as JSON, in the shape apply_writeback_config reads."""

import json

from django.core.management.base import BaseCommand, CommandError

from agents.models import Organization
from agents.writeback_config import export_config


class Command(BaseCommand):
    help = "Print the writeback configuration as JSON, in the shape apply_writeback_config reads."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument("--agent", help="Only this agent id.")

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"Organization {options['org']!r} not found.")
        document = export_config(organization, options.get("agent"))
        if options.get("agent") and not document["agents"]:
            raise CommandError(f"Agent {options['agent']!r} not found in {organization.slug!r}.")
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
