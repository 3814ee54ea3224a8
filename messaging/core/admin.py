"""Pieces every room's admin uses."""


class ReadOnlyAdminMixin:
    """Shows rows and offers no way to add, change or delete them (a model admin or an inline)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(ReadOnlyAdminMixin):
    """An inline that shows rows and offers no way to add, change or delete them."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


class ActionsOnlyAdminMixin:
    """A model admin whose rows open read-only and cannot be added, but whose list still runs
    actions.

    Django offers actions only to someone with the change permission, so that permission is
    kept for the list and refused for a single row.
    """

    def get_readonly_fields(self, request, obj=None):
        # The admin's own display fields, then every column.
        return [*self.readonly_fields, *(f.name for f in self.model._meta.fields)]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)


def email_of(user) -> str:
    """A person as the app names them everywhere: by email (the username is allauth's own)."""
    if user is None:
        return "—"
    return user.email or user.get_username()
