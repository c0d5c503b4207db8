"""Re-encrypt every stored Marketo client secret with the first key of FIELD_ENCRYPTION_KEYS."""

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations.encryption import SecretDecryptionError, reencrypt_secret
from integrations.models import MarketoConnection


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored Marketo client secret with the first key of FIELD_ENCRYPTION_KEYS. "
        "Run it after putting a new key first; once it succeeds, the old keys can be removed."
    )

    def handle(self, *args, **options):
        connections = MarketoConnection.objects.exclude(client_secret_encrypted="").select_related("organization")
        unreadable = []
        count = 0
        with transaction.atomic():
            for connection in connections.select_for_update():
                try:
                    connection.client_secret_encrypted = reencrypt_secret(connection.client_secret_encrypted)
                except (InvalidToken, SecretDecryptionError):
                    unreadable.append(connection.organization.slug)
                    continue
                connection.save(update_fields=["client_secret_encrypted", "updated_at"])
                count += 1
            if unreadable:
                # All or nothing, so no secret is left on a key the operator is about to drop.
                transaction.set_rollback(True)

        if unreadable:
            raise CommandError(
                f"The client secrets of {', '.join(unreadable)} can't be decrypted with any key in "
                "FIELD_ENCRYPTION_KEYS; add the key they were encrypted with and run this again. Nothing was changed."
            )
        self.stdout.write(f"Re-encrypted {count} client secrets with the first key of FIELD_ENCRYPTION_KEYS.")
