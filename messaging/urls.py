"""URLs of the messaging app, each pointing into the room that owns it (docs/architecture.md).
Names here are used by the layout's navigation."""

from django.urls import path, re_path

from messaging.api import problems as api_problems
from messaging.api.views import campaigns as api_campaigns
from messaging.api.views import docs as api_docs
from messaging.api.views import keys as api_key_views
from messaging.api.views import resources as api
from messaging.audit import views as audit_views
from messaging.campaigns import views as campaign_views
from messaging.compose import views as compose_views
from messaging.consent import views as consent_views
from messaging.contacts.views import contacts as contact_views
from messaging.contacts.views import imports as import_views
from messaging.hooks import views as hook_views
from messaging.inbox import views as inbox_views
from messaging.links import views as rc_views
from messaging.message_templates import views as template_views
from messaging.outbox.views import attachments as attachment_views
from messaging.outbox.views import messages as outbox_views
from messaging.teams import views as team_views
from messaging.tracking import views as webhook_views

urlpatterns = [
    # teams
    path("teams/", team_views.team_list, name="team_list"),
    path("teams/new/", team_views.team_create, name="team_create"),
    path("teams/switch/", team_views.team_switch, name="team_switch"),
    path("team/", team_views.team_detail, name="team_detail"),
    path("team/audit/", audit_views.audit_log, name="audit_log"),
    path("team/audit/export.csv", audit_views.audit_export, name="audit_export"),
    path("team/webhooks/", hook_views.webhook_list, name="webhook_list"),
    path("team/webhooks/new/", hook_views.webhook_create, name="webhook_create"),
    path("team/webhooks/<int:pk>/", hook_views.webhook_detail, name="webhook_detail"),
    path("team/webhooks/<int:pk>/rotate/", hook_views.webhook_rotate, name="webhook_rotate"),
    path("team/webhooks/<int:pk>/toggle/", hook_views.webhook_toggle, name="webhook_toggle"),
    path("team/webhooks/<int:pk>/delete/", hook_views.webhook_delete, name="webhook_delete"),
    path("team/webhooks/<int:pk>/test/", hook_views.webhook_test, name="webhook_test"),
    path(
        "team/webhooks/<int:pk>/deliveries/<int:delivery_id>/redeliver/",
        hook_views.webhook_redeliver,
        name="webhook_redeliver",
    ),
    path("teams/<slug:slug>/", team_views.team_page, name="team_page"),
    path("teams/<slug:slug>/rename/", team_views.team_rename, name="team_rename"),
    path("teams/<slug:slug>/leave/", team_views.team_leave, name="team_leave"),
    path("teams/<slug:slug>/transfer/", team_views.team_transfer, name="team_transfer"),
    path(
        "teams/<slug:slug>/members/<int:member_id>/role/",
        team_views.member_role,
        name="member_role",
    ),
    path(
        "teams/<slug:slug>/members/<int:member_id>/remove/",
        team_views.member_remove,
        name="member_remove",
    ),
    path("teams/<slug:slug>/invite/", team_views.invitation_create, name="invitation_create"),
    path(
        "teams/<slug:slug>/invitations/<int:invitation_id>/resend/",
        team_views.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "teams/<slug:slug>/invitations/<int:invitation_id>/revoke/",
        team_views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("teams/<slug:slug>/api-keys/", api_key_views.api_keys, name="api_keys"),
    path(
        "teams/<slug:slug>/api-keys/<int:key_id>/revoke/",
        api_key_views.api_key_revoke,
        name="api_key_revoke",
    ),
    path("invitations/<str:token>/", team_views.invitation_accept, name="invitation_accept"),
    # consent
    path("consent/", consent_views.consent_list, name="consent"),
    path("consent/settings/", consent_views.consent_settings, name="consent_settings"),
    # message templates
    path("templates/", template_views.template_list, name="templates"),
    path("templates/new/", template_views.template_new, name="template_new"),
    path("templates/preview/", template_views.template_preview, name="template_preview"),
    path("templates/<int:pk>/", template_views.template_edit, name="template_edit"),
    path("templates/<int:pk>/delete/", template_views.template_delete, name="template_delete"),
    path("templates/<int:pk>/files/", compose_views.template_files, name="template_files"),
    path(
        "templates/<int:pk>/files/<int:file_pk>/delete/",
        compose_views.template_file_delete,
        name="template_file_delete",
    ),
    # ringcentral
    path("ringcentral/", rc_views.overview, name="ringcentral"),
    path("ringcentral/connect/", rc_views.connect, name="ringcentral_connect"),
    path("ringcentral/callback/", rc_views.callback, name="ringcentral_callback"),
    path("ringcentral/<int:pk>/share/", rc_views.share, name="ringcentral_share"),
    path("ringcentral/<int:pk>/sync/", rc_views.sync, name="ringcentral_sync"),
    path("ringcentral/<int:pk>/bring/", rc_views.bring, name="ringcentral_bring"),
    path("ringcentral/<int:pk>/stop-using/", rc_views.stop_using, name="ringcentral_stop_using"),
    path("ringcentral/<int:pk>/disconnect/", rc_views.disconnect, name="ringcentral_disconnect"),
    # outbox
    path("messages/", outbox_views.outbox_list, name="outbox"),
    path("messages/status/", outbox_views.message_statuses, name="outbox_status"),
    path("messages/live/", outbox_views.outbox_live, name="outbox_live"),
    path("messages/<int:pk>/", outbox_views.message_detail, name="message_detail"),
    path("messages/<int:pk>/live/", outbox_views.message_live, name="message_live"),
    path("messages/<int:pk>/cancel/", outbox_views.message_cancel, name="message_cancel"),
    path("messages/<int:pk>/retry/", outbox_views.message_retry, name="message_retry"),
    path("messages/<int:pk>/send-now/", outbox_views.message_send_now, name="message_send_now"),
    path(
        "messages/<int:pk>/reschedule/", outbox_views.message_reschedule, name="message_reschedule"
    ),
    # compose
    path("messages/compose/", compose_views.compose_view, name="compose"),
    path("messages/compose/upload/", compose_views.upload, name="compose_upload"),
    path(
        "messages/compose/upload/<uuid:key>/delete/",
        compose_views.upload_delete,
        name="compose_upload_delete",
    ),
    path(
        "messages/compose/upload/<uuid:key>/thumbnail/",
        compose_views.draft_thumbnail,
        name="compose_upload_thumbnail",
    ),
    path("messages/compose/check/", compose_views.check, name="compose_check"),
    path("messages/attachments/<int:pk>/", attachment_views.attachment, name="attachment"),
    path(
        "messages/attachments/<int:pk>/thumbnail/",
        attachment_views.attachment_thumbnail,
        name="attachment_thumbnail",
    ),
    # inbox
    path("inbox/", inbox_views.inbox_list, name="inbox"),
    path("inbox/live/", inbox_views.inbox_live, name="inbox_live"),
    path("inbox/settings/", inbox_views.inbox_settings, name="inbox_settings"),
    path("inbox/notifications/", inbox_views.inbox_notifications, name="inbox_notifications"),
    path("inbox/files/<uuid:key>/", inbox_views.inbox_file, name="inbox_file"),
    path(
        "inbox/files/<uuid:key>/thumbnail/",
        inbox_views.inbox_file_thumbnail,
        name="inbox_file_thumbnail",
    ),
    path("inbox/<int:pk>/", inbox_views.inbox_thread, name="inbox_thread"),
    path("inbox/<int:pk>/live/", inbox_views.inbox_thread_live, name="inbox_thread_live"),
    path("inbox/<int:pk>/reply/", inbox_views.inbox_reply, name="inbox_reply"),
    path("inbox/<int:pk>/assign/", inbox_views.inbox_assign, name="inbox_assign"),
    path("inbox/<int:pk>/close/", inbox_views.inbox_close, name="inbox_close"),
    path("inbox/<int:pk>/reopen/", inbox_views.inbox_reopen, name="inbox_reopen"),
    path("inbox/<int:pk>/unread/", inbox_views.inbox_unread, name="inbox_unread"),
    path("inbox/<int:pk>/notes/", inbox_views.inbox_note, name="inbox_note"),
    path(
        "inbox/<int:pk>/notes/<int:note_id>/delete/",
        inbox_views.inbox_note_delete,
        name="inbox_note_delete",
    ),
    # contacts
    path("contacts/", contact_views.contact_list, name="contacts"),
    path("contacts/new/", contact_views.contact_new, name="contact_new"),
    path("contacts/search.json", contact_views.contact_search, name="contact_search"),
    path("contacts/export.csv", contact_views.contact_export, name="contact_export"),
    path("contacts/import/", import_views.import_upload, name="contact_import_upload"),
    path("contacts/import/<int:pk>/", import_views.import_detail, name="contact_import"),
    path(
        "contacts/import/<int:pk>/progress/",
        import_views.import_progress,
        name="contact_import_progress",
    ),
    path(
        "contacts/import/<int:pk>/problems.csv",
        import_views.import_problems,
        name="contact_import_problems",
    ),
    path(
        "contacts/import/<int:pk>/resume/", import_views.import_resume, name="contact_import_resume"
    ),
    path("contacts/<int:pk>/", contact_views.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", contact_views.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/merge/", contact_views.contact_merge, name="contact_merge"),
    path("contacts/<int:pk>/delete/", contact_views.contact_delete, name="contact_delete"),
    # the REST API (messaging/api/)
    path("api/v1/schema/", api_docs.Schema.as_view(), name="api_schema"),
    path("api/v1/docs/", api_docs.Docs.as_view(url_name="api_schema"), name="api_docs"),
    path("api/v1/messages", api.MessageList.as_view(), name="api_messages"),
    path("api/v1/messages/<int:pk>", api.MessageDetail.as_view(), name="api_message"),
    path("api/v1/messages/<int:pk>/cancel", api.MessageCancel.as_view(), name="api_cancel"),
    path("api/v1/sender-numbers", api.SenderNumberList.as_view(), name="api_sender_numbers"),
    path("api/v1/conversations", api.ConversationList.as_view(), name="api_conversations"),
    path(
        "api/v1/conversations/<int:pk>",
        api.ConversationDetail.as_view(),
        name="api_conversation",
    ),
    path(
        "api/v1/conversations/<int:pk>/messages",
        api.ConversationMessages.as_view(),
        name="api_conversation_messages",
    ),
    path(
        "api/v1/conversations/<int:pk>/replies",
        api.ConversationReplies.as_view(),
        name="api_conversation_replies",
    ),
    path("api/v1/contacts", api.ContactList.as_view(), name="api_contacts"),
    path("api/v1/contacts/imports", api.ImportCreate.as_view(), name="api_contact_imports"),
    path(
        "api/v1/contacts/imports/<int:pk>",
        api.ImportDetail.as_view(),
        name="api_contact_import",
    ),
    path("api/v1/contacts/<int:pk>", api.ContactDetail.as_view(), name="api_contact"),
    path("api/v1/campaigns", api_campaigns.CampaignList.as_view(), name="api_campaigns"),
    path("api/v1/campaigns/<int:pk>", api_campaigns.CampaignDetail.as_view(), name="api_campaign"),
    path(
        "api/v1/campaigns/<int:pk>/start",
        api_campaigns.CampaignStart.as_view(),
        name="api_campaign_start",
    ),
    path(
        "api/v1/campaigns/<int:pk>/pause",
        api_campaigns.CampaignPause.as_view(),
        name="api_campaign_pause",
    ),
    path(
        "api/v1/campaigns/<int:pk>/resume",
        api_campaigns.CampaignResume.as_view(),
        name="api_campaign_resume",
    ),
    path(
        "api/v1/campaigns/<int:pk>/cancel",
        api_campaigns.CampaignCancel.as_view(),
        name="api_campaign_cancel",
    ),
    path(
        "api/v1/campaigns/<int:pk>/report",
        api_campaigns.CampaignReport.as_view(),
        name="api_campaign_report",
    ),
    path(
        "api/v1/campaigns/<int:pk>/report.csv",
        api_campaigns.CampaignReportCsv.as_view(),
        name="api_campaign_report_csv",
    ),
    re_path(r"^api/", api_problems.not_found),
    # campaigns
    path("campaigns/", campaign_views.campaign_list, name="campaigns"),
    path("campaigns/new/", campaign_views.campaign_new, name="campaign_new"),
    path("campaigns/<int:pk>/", campaign_views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", campaign_views.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/start/", campaign_views.campaign_start, name="campaign_start"),
    path("campaigns/<int:pk>/pause/", campaign_views.campaign_pause, name="campaign_pause"),
    path("campaigns/<int:pk>/resume/", campaign_views.campaign_resume, name="campaign_resume"),
    path("campaigns/<int:pk>/cancel/", campaign_views.campaign_cancel, name="campaign_cancel"),
    path(
        "campaigns/<int:pk>/progress/", campaign_views.campaign_progress, name="campaign_progress"
    ),
    path("campaigns/<int:pk>/report.csv", campaign_views.campaign_report, name="campaign_report"),
    # webhooks
    path("ringcentral/webhook/", webhook_views.ringcentral_webhook, name="ringcentral_webhook"),
]
