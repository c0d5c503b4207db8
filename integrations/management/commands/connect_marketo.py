"""Connect an organization to Marketo from the command line.

Runs the same flow as the settings page's Connect button and exits with
status 1 and the same message when a check fails.
"""

from django.core.management.base import BaseCommand, CommandError

from agents.models import Organization
from integrations.marketo import messages
from integrations.marketo.connect import ConnectionFlowError, connect_marketo


class Command(BaseCommand):
    help = (
        "Connect an organization to Marketo: check the credentials and the API role's "
        "permissions, then find or create the Docket folder, program and activity types."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization to connect.")
        parser.add_argument(
            "--munchkin-id", required=True, help="Marketo Munchkin Account ID, such as 123-ABC-456."
        )
        parser.add_argument(
            "--client-id", required=True, help="Client ID of the Docket LaunchPoint service."
        )
        parser.add_argument(
            "--client-secret", required=True, help="Client Secret of the Docket LaunchPoint service."
        )
        parser.add_argument(
            "--base-url",
            default=None,
            help=(
                "Send calls to this origin (scheme, host and port) instead of "
                "https://MUNCHKIN-ID.mktorest.com. It must be listed in MARKETO_ALLOWED_BASE_URLS."
            ),
        )

    def handle(self, *args, **options):
        slug = options["org"]
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(messages.organization_not_found(slug))

        try:
            result = connect_marketo(
                organization,
                munchkin_id=options["munchkin_id"],
                client_id=options["client_id"],
                client_secret=options["client_secret"],
                base_url=options["base_url"],
                actor="command:connect_marketo",
            )
        except ConnectionFlowError as error:
            raise CommandError(error.message) from None

        connection = result.connection
        for asset in result.assets:
            self.stdout.write(f"{asset.action.capitalize()} {asset.describe()}")
        if result.usage_warning:
            self.stdout.write(self.style.WARNING(f"Warning: {result.usage_warning}"))
        self.stdout.write(
            self.style.SUCCESS(
                f"Connected {organization.slug} to Marketo {connection.munchkin_id} "
                f"at {connection.base_url}."
            )
        )
