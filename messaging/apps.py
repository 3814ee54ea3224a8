from django.apps import AppConfig


class MessagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self):
        # Where the rooms meet without importing each other (docs/architecture.md): the outbox
        # hands queued messages to the sending room's task; delivery tracking and the inbox
        # follow the life of each RingCentral link (and the inbox the outbox's new messages)
        # through signals; tracking hands instant-message deliveries to the inbox.
        from messaging.campaigns import running as campaign_running
        from messaging.campaigns import tasks as campaign_tasks
        from messaging.inbox import instant
        from messaging.inbox import receivers as inbox_receivers  # noqa: F401 - connects them
        from messaging.outbox import handoff
        from messaging.sending import tasks as sending_tasks
        from messaging.tracking import (
            receivers,  # noqa: F401 - connects the signal receivers
            webhooks,
        )

        handoff.register(sending_tasks.send_soon)
        # A started or resumed campaign releases its first messages at once, in a worker.
        campaign_running.register_feed_soon(campaign_tasks.feed_soon)
        webhooks.register_instant_handler(instant.receive)
        webhooks.register_changes_handler(instant.changes_announced)
