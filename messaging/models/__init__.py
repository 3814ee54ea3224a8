"""Data model of mmsportal, one module per concern; every model is importable from here.

teams       Role, Team, Membership, Invitation
links       RingCentralConnection (a linked RingCentral user), its SenderNumbers, and the
            ConnectionShares that let its user's other teams use it
outbox      OutboundMessage and its Recipients, Attachments, SendAttempts and MessageEvents
drafts      DraftAttachment: files on the compose page before their message exists
files       StoredFile: what a draft and an attachment both record of a checked file (abstract)
consent     ConsentRecord (one contact number towards one sender scope) and its
            ConsentChanges; TeamMessagingSettings (quiet hours, the opt-out line)
contacts    Contact, its ContactNumbers and Tags; ImportJob and its ImportProblems
inbox       Conversation, ConversationMessage (both directions), InboxFile, ConversationNote,
            ConversationRead, InboxSync, Notification
templates   MessageTemplate (personal or team, with its MissingPolicy) and TemplateAttachments
campaigns   Campaign, its CampaignFiles and CampaignRecipients
tracking    TrackingPace and WebhookSubscription (delivery reports)
hooks       WebhookEndpoint, its WebhookDeliveries and their WebhookAttempts (outgoing webhooks)
audit       AuditEntry (the append-only audit log) and its AuditAction catalogue
api         ApiKey (a team's key for the REST API) and IdempotencyRecord
ratelimit   RateLimitBucket and RateLimitGrant (the database rate limiter's state)
"""

from .api import ApiKey, IdempotencyRecord, IdempotencyState
from .audit import SYSTEM, AuditAction, AuditEntry, AuditEntryError
from .campaigns import (
    ACTIVE_CAMPAIGN_STATUSES,
    ENDED_CAMPAIGN_STATUSES,
    Campaign,
    CampaignFile,
    CampaignRecipient,
    CampaignStatus,
    MissingFieldPolicy,
    RecipientSource,
    RecipientState,
    SkipKind,
)
from .consent import (
    EVERY_NUMBER,
    ConsentChange,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    TeamMessagingSettings,
)
from .contacts import Contact, ContactNumber, ImportJob, ImportProblem, ImportStatus, Tag
from .drafts import DraftAttachment
from .hooks import (
    TEST_EVENT,
    DeliveryStatus,
    HookEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from .inbox import (
    Conversation,
    ConversationMessage,
    ConversationNote,
    ConversationRead,
    ConversationState,
    Direction,
    FileState,
    InboxFile,
    InboxSync,
    MessageSource,
    Notification,
)
from .links import ConnectionShare, ConnectionStatus, RingCentralConnection, SenderNumber
from .outbox import (
    ACCEPTED_STATUSES,
    CLAIMABLE_STATUSES,
    FINAL_STATUSES,
    Attachment,
    AttemptOutcome,
    MessageEvent,
    MessageStatus,
    OutboundMessage,
    Recipient,
    RecipientStatus,
    SendAttempt,
    attachment_key,
)
from .ratelimit import RateLimitBucket, RateLimitGrant
from .teams import InboxEmails, Invitation, Membership, Role, Team
from .templates import MessageTemplate, MissingPolicy, TemplateAttachment
from .tracking import TrackingPace, WebhookStatus, WebhookSubscription

__all__ = [
    "SYSTEM",
    "TEST_EVENT",
    "AuditAction",
    "AuditEntry",
    "AuditEntryError",
    "DeliveryStatus",
    "HookEvent",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "ApiKey",
    "IdempotencyRecord",
    "IdempotencyState",
    "ACTIVE_CAMPAIGN_STATUSES",
    "ENDED_CAMPAIGN_STATUSES",
    "Campaign",
    "CampaignFile",
    "CampaignRecipient",
    "CampaignStatus",
    "MissingFieldPolicy",
    "RecipientSource",
    "RecipientState",
    "SkipKind",
    "ACCEPTED_STATUSES",
    "CLAIMABLE_STATUSES",
    "FINAL_STATUSES",
    "Attachment",
    "AttemptOutcome",
    "ConnectionShare",
    "ConsentChange",
    "ConsentRecord",
    "ConsentSource",
    "ConsentState",
    "Contact",
    "ContactNumber",
    "Conversation",
    "ConversationMessage",
    "ConversationNote",
    "ConversationRead",
    "ConversationState",
    "Direction",
    "FileState",
    "InboxEmails",
    "ImportJob",
    "ImportProblem",
    "ImportStatus",
    "InboxFile",
    "InboxSync",
    "MessageSource",
    "Notification",
    "ConnectionStatus",
    "DraftAttachment",
    "EVERY_NUMBER",
    "Invitation",
    "Membership",
    "MessageEvent",
    "MessageStatus",
    "MessageTemplate",
    "MissingPolicy",
    "OutboundMessage",
    "RateLimitBucket",
    "RateLimitGrant",
    "Recipient",
    "RecipientStatus",
    "RingCentralConnection",
    "Role",
    "SendAttempt",
    "SenderNumber",
    "Tag",
    "Team",
    "TeamMessagingSettings",
    "TemplateAttachment",
    "TrackingPace",
    "WebhookStatus",
    "WebhookSubscription",
    "attachment_key",
]
