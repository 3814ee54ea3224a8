"""Settings for the processes of a chaos run: the project's settings, read from the same
environment, with the outbox's safety nets run every few seconds instead of every minute.

The beat intervals are fixed in mmsportal/settings.py (they are not a deployment choice), so the
run shortens them here rather than through the environment; everything else the run changes
(timeouts, lease, grace, backoff, rate limits) goes through the ordinary environment variables.
Only the chaos run's own worker and beat processes load this module.
"""

import os

from mmsportal.settings import *  # noqa: F403
from mmsportal.settings import CELERY_BEAT_SCHEDULE as _PROJECT_SCHEDULE

# The run's own queue, so that nothing else consuming the same broker picks up its tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CHAOS_QUEUE", "mmsportal-chaos")

_every = float(os.environ.get("CHAOS_BEAT_SECONDS", "3"))
_kept = (
    "outbox-dispatch-due",
    "outbox-sweep-stuck",
    "outbox-reconcile-unknown",
    "tracking-poll-statuses",
    "inbox-sync",
    "inbox-download-files",
)
# Each run still expires before the next is due, as in the project's schedule.
CELERY_BEAT_SCHEDULE = {
    name: {**_PROJECT_SCHEDULE[name], "schedule": _every, "options": {"expires": _every}}
    for name in _kept
}

# A message not yet final is read again every couple of seconds, whatever its age.
TRACKING_SCHEDULE = ((None, 2),)
