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
        from django.db.models.signals import post_delete

        from messaging.campaigns import running as campaign_running
        from messaging.campaigns import signals as campaign_signals
        from messaging.campaigns import tasks as campaign_tasks
        from messaging.compose import picker
        from messaging.consent.signals import consent_changed
        from messaging.hooks import events as hook_events
        from messaging.inbox import instant
        from messaging.inbox import receivers as inbox_receivers  # noqa: F401 - connects them
        from messaging.inbox import signals as inbox_signals
        from messaging.models import TemplateAttachment
        from messaging.outbox import handoff
        from messaging.outbox import signals as outbox_signals
        from messaging.sending import tasks as sending_tasks
        from messaging.tracking import (
            receivers,  # noqa: F401 - connects the signal receivers
            webhooks,
        )

        handoff.register(sending_tasks.send_soon)
        # A template's stored files are compose's: released when their row goes.
        post_delete.connect(
            picker.release_template_file, sender=TemplateAttachment, dispatch_uid="template-file"
        )
        # A started or resumed campaign releases its first messages at once, in a worker.
        campaign_running.register_feed_soon(campaign_tasks.feed_soon)
        webhooks.register_instant_handler(instant.receive)
        webhooks.register_changes_handler(instant.changes_announced)
        # Outgoing webhooks follow messages, conversations, consent and campaigns
        # (messaging/hooks/events.py).
        outbox_signals.message_status_changed.connect(
            hook_events.on_message_status_changed, dispatch_uid="hooks-message-status"
        )
        inbox_signals.message_received.connect(
            hook_events.on_message_received, dispatch_uid="hooks-message-received"
        )
        inbox_signals.conversation_assigned.connect(
            hook_events.on_conversation_assigned, dispatch_uid="hooks-conversation-assigned"
        )
        consent_changed.connect(hook_events.on_consent_changed, dispatch_uid="hooks-consent")
        campaign_signals.campaign_finished.connect(
            hook_events.on_campaign_finished, dispatch_uid="hooks-campaign-finished"
        )
