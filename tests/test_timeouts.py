"""Every call to RingCentral gives up after the read timeout, even when the caller sets none.

The emulator holds the answer back longer than `RINGCENTRAL_TIMEOUT` allows. Without a timeout
the call would wait the stall out and get an answer; with one it ends as a typed
`NetworkError("read timeout")`, which the callers treat as "RingCentral may have it".
Sends over the kept-alive connection: tests/test_send_task.py (a stall past the read timeout).
"""

import pytest

from messaging.ringcentral import errors, http, oauth, paths
from messaging.ringcentral.emulator import Fault

STALL_SECONDS = 2.0
MESSAGE_STORE = "/restapi/v1.0/account/~/extension/~/message-store"


@pytest.fixture
def stalling(settings, emulator):
    settings.RINGCENTRAL_TIMEOUT = (2.0, 0.3)

    def stall(path: str) -> None:
        emulator.inject(Fault("stall", path_contains=path, seconds=STALL_SECONDS))

    return stall


def test_a_rest_call_without_its_own_timeout_stops_at_the_read_timeout(stalling):
    stalling(MESSAGE_STORE)
    with pytest.raises(errors.NetworkError) as caught:
        http.new_session().get(http.url(MESSAGE_STORE))
    assert str(caught.value).endswith("read timeout")
    assert caught.value.request_sent is None


def test_a_token_request_stops_at_the_read_timeout(stalling):
    stalling(paths.TOKEN)
    with pytest.raises(errors.NetworkError) as caught:
        oauth.refresh_tokens("any-refresh-token")
    assert str(caught.value).endswith("read timeout")
