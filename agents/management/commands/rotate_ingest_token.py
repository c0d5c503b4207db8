"""Replace an organization's webhook ingest token and print the new one once."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from agents.models import Organization
from integrations.audit import record_change


class Command(BaseCommand):
    help = (
        "Replace an organization's webhook ingest token. The old token stops working at once; "
        "the new one is printed once, so update Docket's webhook settings right after."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization.")

    def handle(self, *args, **options):
        with transaction.atomic():
            organization = Organization.objects.select_for_update().filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"Organization {options['org']!r} not found; list them in the admin under Organizations.")
            token = organization.issue_ingest_token()
            organization.ingest_token_rotated_at = timezone.now()
            organization.save(update_fields=["ingest_token_hash", "ingest_token_rotated_at"])
            # The audit entry records the rotation, never the token or its hash.
            record_change(organization, "manage.py", "rotate_ingest_token", "Organization", organization.slug, {})

        self.stdout.write(f"Rotated the ingest token of {organization.slug!r}; the old token no longer works.")
        self.stdout.write("New webhook ingest token (shown once; store it now):")
        self.stdout.write(token)
