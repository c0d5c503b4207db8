"""Create a customer workspace and print its webhook ingest token once."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from agents.models import Organization


class Command(BaseCommand):
    help = "Create a customer workspace (organization) and print its webhook ingest token once."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="Short unique identifier, e.g. corvane.")
        parser.add_argument("--name", required=True, help="Display name of the workspace.")

    def handle(self, *args, **options):
        slug = options["slug"]
        if slugify(slug) != slug:
            raise CommandError(
                f"Slug {slug!r} is invalid: use lowercase letters, digits and hyphens, e.g. {slugify(slug) or 'acme'!r}."
            )
        if Organization.objects.filter(slug=slug).exists():
            raise CommandError(f"Organization {slug!r} already exists; pick another slug.")

        with transaction.atomic():
            organization = Organization(slug=slug, name=options["name"])
            token = organization.issue_ingest_token()
            organization.save()

        self.stdout.write(f"Created organization {slug!r} ({organization.name}).")
        self.stdout.write("Webhook ingest token (shown once; store it now):")
        self.stdout.write(token)
