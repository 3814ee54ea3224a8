"""`python manage.py create_api_key --user EMAIL [--team SLUG] [--role sender|viewer|admin]
[--name NAME]`

Makes a team API key acting as that user (a team admin) with the role given (sender by default,
never above the user's own), through the same rules as the team's API keys page
(messaging/api/keys.py). The key is printed alone on the last line; it is stored only as a
digest and cannot be shown again. Exit status 1 on bad input.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from messaging import audit
from messaging.api import keys
from messaging.management.members import membership_for
from messaging.models import Role


class Command(BaseCommand):
    help = "Make a team API key for a user; prints the key alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="EMAIL", help="The key's maker.")
        parser.add_argument(
            "--team", metavar="SLUG", help="The key's team (needed if the user has several)."
        )
        parser.add_argument(
            "--role",
            default=Role.SENDER.value,
            choices=[role.value for role in keys.ROLES],
            help="What the key may do (default: sender).",
        )
        parser.add_argument("--name", default="Command line", help="What will use the key.")

    def handle(self, *args, **options):
        membership = membership_for(options["user"], options["team"])
        try:
            # The audit log names the user the key is made for, as if they had made it.
            with audit.acting_as(membership.user):
                new_key = keys.create_key(membership, name=options["name"], role=options["role"])
        except keys.KeyRefused as refused:
            raise CommandError(
                f"{membership.user.email} in “{membership.team.slug}”: {refused}"
            ) from None
        self.stdout.write(
            f"Made the {new_key.api_key.get_role_display().lower()} key “{new_key.api_key.name}” "
            f"({new_key.api_key.prefix}…) of “{membership.team.slug}”. It is shown only now:"
        )
        self.stdout.write(new_key.secret)
