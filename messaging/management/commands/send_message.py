"""`python manage.py send_message --user EMAIL [--team SLUG] --from +1… --to +1… [--to …]
--text "…" [--attach PATH …] [--group] [--wait [--timeout SECONDS]]`

Sends as that user, for scripts and operators, through exactly what the compose page uses
(messaging/compose/): the role check (sender or above), the numbers the user may send from,
recipient parsing, text and file checks, and the outbox. Several `--to` numbers get a message
each unless `--group` makes them one group message.

Exit status: 0 queued (or, with `--wait`, every message accepted by RingCentral); 1 bad input or,
with `--wait`, a message failed (its reason and what to do are printed); 2 a usage error;
3 `--timeout` passed before every message was settled (they stay in the outbox).
"""

from __future__ import annotations

import time

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from messaging.compose.senders import sender_numbers, sender_refusal
from messaging.compose.submission import ComposeInvalid, Mode, send
from messaging.consent import quiet_hours
from messaging.core.phones import format_number
from messaging.management.members import membership_for
from messaging.models import Membership, MessageStatus, OutboundMessage, Role

# How the command's options are named in messages about compose's fields.
OPTION_OF_FIELD = {
    "sender": "--from",
    "to": "--to",
    "mode": "--group",
    "text": "--text",
    "attachments": "--attach",
}
# With --wait: which statuses end the wait, and how.
ACCEPTED = {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.NO_RECEIPT}
FAILED = {
    MessageStatus.FAILED,
    MessageStatus.CANCELED,
    MessageStatus.DELIVERY_FAILED,
    MessageStatus.SENDING_FAILED,
}
POLL_SECONDS = 0.25
TIMEOUT_EXIT = 3


class Command(BaseCommand):
    help = "Send an SMS/MMS as a user, through the same checks and outbox as the compose page."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="EMAIL", help="Send as this user.")
        parser.add_argument(
            "--team", metavar="SLUG", help="The team to send in (needed if the user has several)."
        )
        parser.add_argument(
            "--from", dest="sender", required=True, metavar="NUMBER", help="Number to send from."
        )
        parser.add_argument(
            "--to",
            dest="to",
            action="append",
            required=True,
            metavar="NUMBER",
            help="A recipient (repeatable; commas also separate numbers).",
        )
        parser.add_argument("--text", default="", help="The text of the message.")
        parser.add_argument(
            "--attach",
            dest="paths",
            action="extend",
            nargs="+",
            default=[],
            metavar="PATH",
            help="Files to attach (repeatable).",
        )
        parser.add_argument(
            "--group",
            action="store_true",
            help="One group message to every recipient instead of one message each.",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Wait until RingCentral accepted every message, or one failed (exit 1).",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="With --wait: give up waiting after this long (exit 3); default: no limit.",
        )

    def handle(self, *args, **options):
        membership = membership_for(options["user"], options["team"])
        try:
            created = send(
                membership,
                sender=options["sender"],
                to="\n".join(options["to"]),
                text=options["text"],
                paths=options["paths"],
                mode=Mode.GROUP if options["group"] else Mode.SEPARATE,
            )
        except PermissionDenied:
            raise CommandError(
                f"{membership.user.email} is a {membership.get_role_display().lower()} in "
                f"“{membership.team.slug}”; sending needs the {Role.SENDER.label.lower()} role "
                "or higher."
            ) from None
        except ComposeInvalid as invalid:
            raise CommandError(self._explain(invalid, membership)) from None

        for message in created:
            recipients = ", ".join(
                format_number(n) for n in message.recipients.values_list("phone_number", flat=True)
            )
            self.stdout.write(f"Queued message {message.pk} to {recipients}.")
        quiet = quiet_hours.warning(membership.team, [n for m in created for n in _numbers(m)])
        if quiet:
            self.stderr.write(f"Warning: {quiet}")
        if options["wait"]:
            self._wait([m.pk for m in created], options["timeout"])

    @staticmethod
    def _explain(invalid: ComposeInvalid, membership: Membership) -> str:
        lines = ["The message was not queued:"]
        for field, messages in invalid.errors.items():
            for text in messages:
                lines.append(f"  {OPTION_OF_FIELD.get(field, field)}: {text}")
        if "sender" in invalid.errors:
            usable = [
                format_number(n.phone_number)
                for n in sender_numbers(membership.user, membership.team)
                if sender_refusal(n, with_files=False) is None
            ]
            lines.append(
                f"  Numbers {membership.user.email} may send from in “{membership.team.slug}”: "
                f"{', '.join(usable) if usable else 'none (link RingCentral first)'}."
            )
        return "\n".join(lines)

    # --- --wait -------------------------------------------------------------------------------

    def _wait(self, message_ids: list[int], timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = set(message_ids)
        shown: dict[int, str] = {}
        failed = []
        while pending:
            for message in OutboundMessage.objects.filter(pk__in=pending):
                if shown.get(message.pk) != message.status:
                    shown[message.pk] = message.status
                    self.stdout.write(f"Message {message.pk}: {message.get_status_display()}.")
                if message.status in ACCEPTED:
                    pending.discard(message.pk)
                    self.stdout.write(
                        self.style.SUCCESS(
                            f"Message {message.pk} accepted by RingCentral "
                            f"(id {message.rc_message_id})."
                        )
                    )
                elif message.status in FAILED:
                    pending.discard(message.pk)
                    failed.append(message)
            if not pending:
                break
            if deadline is not None and time.monotonic() > deadline:
                still = ", ".join(f"{pk} ({shown.get(pk, 'queued')})" for pk in sorted(pending))
                raise CommandError(
                    f"Gave up waiting after {timeout:g} s; still in the outbox: {still}. "
                    "They are sent as soon as they can be.",
                    returncode=TIMEOUT_EXIT,
                )
            time.sleep(POLL_SECONDS)
        if failed:
            for message in failed:
                self.stderr.write(
                    f"Message {message.pk} {message.get_status_display().lower()}: "
                    f"{message.error_reason or 'no reason given.'}"
                )
                if message.error_fix:
                    self.stderr.write(f"  What to do: {message.error_fix}")
            raise CommandError(f"{len(failed)} of {len(message_ids)} message(s) not sent.")


def _numbers(message) -> list[str]:
    return list(message.recipients.values_list("phone_number", flat=True))
