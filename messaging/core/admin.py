"""Pieces every room's admin uses."""


class ReadOnlyInline:
    """An inline that shows rows and offers no way to add, change or delete them."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
