"""Every RingCentral endpoint this project calls, written once (paths below the server URL)."""

API = "/restapi/v1.0"
ACCOUNT = f"{API}/account/~"
EXTENSION = f"{API}/account/~/extension/~"
PHONE_NUMBERS = f"{EXTENSION}/phone-number"
SEND = f"{EXTENSION}/sms"
MESSAGE_STORE = f"{EXTENSION}/message-store"
MESSAGE_SYNC = f"{EXTENSION}/message-sync"
SUBSCRIPTION = f"{API}/subscription"
# High Volume SMS, an account-level store of its own.
A2P_BATCHES = f"{ACCOUNT}/a2p-sms/batches"
A2P_MESSAGES = f"{ACCOUNT}/a2p-sms/messages"
# Standard SMS consent (opt-out) list of the account, API v2.
SMS_CONSENTS = "/restapi/v2/accounts/~/sms/consents"

AUTHORIZE = "/restapi/oauth/authorize"
TOKEN = "/restapi/oauth/token"  # noqa: S105 - a URL path, not a secret
REVOKE = "/restapi/oauth/revoke"
