"""`createsuperuser`, as Django has it, plus what a staff member needs to get into the admin here:
their email address confirmed (sign-in requires a confirmed address) and a personal team. The
admin itself then asks them to set up two-factor authentication (`ADMIN_REQUIRE_MFA`)."""

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.management.commands import createsuperuser
from django.urls import reverse

from messaging.teams import actions


class Command(createsuperuser.Command):
    help = (
        "Create a staff account with every permission, its email address confirmed so it can "
        "sign in at once; the admin then asks for two-factor authentication."
    )

    def handle(self, *args, **options):
        users = get_user_model()._default_manager.db_manager(options["database"])
        before = set(users.filter(is_superuser=True).values_list("pk", flat=True))
        super().handle(*args, **options)
        for user in users.filter(is_superuser=True).exclude(pk__in=before):
            if not user.email:
                self.stderr.write(
                    "The account has no email address, so it cannot sign in: sign-in is by email."
                )
                continue
            EmailAddress.objects.db_manager(options["database"]).update_or_create(
                user=user,
                email__iexact=user.email,
                defaults={"email": user.email, "verified": True, "primary": True},
            )
            actions.ensure_personal_team(user)
            if options["verbosity"] >= 1:
                self.stdout.write(
                    f"{user.email} is confirmed. Sign in at {reverse('account_login')}; the "
                    f"admin ({reverse('admin:index')}) first asks you to set up an "
                    "authenticator app for two-factor authentication."
                )
