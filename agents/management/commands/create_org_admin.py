"""Create a customer admin who can sign in to one organization's settings pages."""

import secrets
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents.models import Organization, OrganizationMembership


class Command(BaseCommand):
    help = "Create a customer admin who can sign in to that organization's settings pages and nothing else."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization.")
        parser.add_argument("email", help="Email address; also the sign-in name.")
        parser.add_argument(
            "--password-stdin", action="store_true", help="Read the password from standard input instead of generating one."
        )

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"Organization {options['org']!r} not found; create it with create_organization.")

        email = options["email"].strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{options['email']!r} is not a valid email address; admins sign in with their email.") from None
        User = get_user_model()
        if User.objects.filter(username=email).exists():
            raise CommandError(f"A user {email!r} already exists.")

        generated = not options["password_stdin"]
        if generated:
            password = secrets.token_urlsafe(15)
        else:
            password = sys.stdin.readline().rstrip("\n")
            try:
                validate_password(password)
            except ValidationError as error:
                raise CommandError("The password is too weak: " + " ".join(error.messages)) from None

        with transaction.atomic():
            user = User.objects.create_user(username=email, email=email, password=password)
            OrganizationMembership.objects.create(user=user, organization=organization)

        self.stdout.write(f"Created admin {email} for organization {organization.slug!r}.")
        if generated:
            self.stdout.write(f"Password (shown once): {password}")
