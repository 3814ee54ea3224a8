from django.apps import AppConfig


class MessagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self):
        # Where the rooms meet without importing each other (docs/architecture.md): the outbox
        # hands queued messages to the sending room's task, and delivery tracking follows the
        # life of each RingCentral link through its signals.
        from messaging.outbox import handoff
        from messaging.sending import tasks as sending_tasks
        from messaging.tracking import receivers  # noqa: F401 - connects the signal receivers

        handoff.register(sending_tasks.send_soon)
