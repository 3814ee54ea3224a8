"""Re-encrypt every stored RingCentral token with the newest TOKEN_ENCRYPTION_KEYS key.

Key rotation, step by step:
    1. put a new key in front: TOKEN_ENCRYPTION_KEYS=new,old   (restart web, worker, beat)
    2. python manage.py rotate_token_keys
    3. drop the old key: TOKEN_ENCRYPTION_KEYS=new            (restart again)
Each connection is rewritten under its row lock, so a token refresh running at the same time
is neither lost nor overwritten with the old pair.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from messaging.core import crypto
from messaging.models import RingCentralConnection, WebhookSubscription


class Command(BaseCommand):
    help = "Re-encrypt all stored RingCentral tokens with the newest key in TOKEN_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        try:
            crypto.keyring()
        except crypto.TokenKeyError as exc:
            raise CommandError(str(exc)) from None

        rotated = unchanged = failed = 0
        for pk in RingCentralConnection.objects.order_by("pk").values_list("pk", flat=True):
            with transaction.atomic():
                connection = RingCentralConnection.objects.select_for_update().get(pk=pk)
                fields = ("access_token_ciphertext", "refresh_token_ciphertext")
                try:
                    new = {name: crypto.rotate(getattr(connection, name)) for name in fields}
                except crypto.TokenDecryptError:
                    failed += 1
                    self.stderr.write(
                        f"Connection {pk} ({connection}): its tokens cannot be decrypted with any "
                        "configured key."
                    )
                    continue
                if all(crypto.is_encrypted_with_newest_key(getattr(connection, n)) for n in fields):
                    unchanged += 1
                # Rewritten even when already on the newest key: cheap, and it makes the run's
                # result independent of which key a previous partial run reached.
                RingCentralConnection.objects.filter(pk=pk).update(**new)
                rotated += 1

        webhooks = 0
        # Webhook verification tokens too: one left on a removed key would make every delivery
        # look forged until RingCentral blacklists the subscription.
        for pk in WebhookSubscription.objects.exclude(verification_token_ciphertext="").values_list(
            "pk", flat=True
        ):
            with transaction.atomic():
                subscription = WebhookSubscription.objects.select_for_update().get(pk=pk)
                try:
                    token = crypto.rotate(subscription.verification_token_ciphertext)
                except crypto.TokenDecryptError:
                    failed += 1
                    self.stderr.write(f"Webhook subscription {pk}: its token cannot be decrypted.")
                    continue
                WebhookSubscription.objects.filter(pk=pk).update(
                    verification_token_ciphertext=token
                )
                webhooks += 1

        self.stdout.write(
            f"Re-encrypted the tokens of {rotated} connection(s) with the newest key "
            f"({unchanged} already used it) and {webhooks} webhook token(s); "
            f"{failed} could not be decrypted."
        )
        if failed:
            raise CommandError(
                f"{failed} token set(s) could not be decrypted. Put the key they were written "
                "with back into TOKEN_ENCRYPTION_KEYS and run this command again; do not remove "
                "any key until it reports 0."
            )
