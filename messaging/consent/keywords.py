"""Opt-out and opt-in keywords texted by a contact (STOP, START, …).

The whole message, trimmed and in any case, must be the keyword: "Stop" opts out, "please stop
texting" does not (carriers and RingCentral match the same way, so the ledger agrees with what
RingCentral does with the message). The lists are the carriers' standard ones (CTIA) plus
RingCentral's High Volume list; HELP and INFO change nothing, and neither does YES, which some
campaigns use for their own confirmation.
"""

from messaging.consent import ledger
from messaging.models import ConsentSource, ConsentState

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "SUBSCRIBE", "RESUME", "CONTINUE"})


def state_for(text: str) -> ConsentState | None:
    """The state a message asks for, or None when it is not a keyword."""
    word = (text or "").strip().upper()
    if word in OPT_OUT_WORDS:
        return ConsentState.OPTED_OUT
    if word in OPT_IN_WORDS:
        return ConsentState.OPTED_IN
    return None


def message_received(team, *, account_id: str, team_number: str, contact_number: str, text, at):
    """A contact's text to a team number: a keyword changes the contact's state towards that
    number (in that RingCentral account), as RingCentral itself does. Returns the state
    recorded, or None."""
    state = state_for(text)
    if state is None or not team_number or not contact_number:
        return None
    ledger.record(
        team,
        contact_number,
        state,
        ConsentSource.KEYWORD,
        account_id=account_id,
        from_number=team_number,
        note=f"Replied {(text or '').strip().upper()}",
        at=at,
    )
    return state
