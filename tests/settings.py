"""The settings the test suite runs with: the project's own, in demo mode unless the
environment says otherwise (the processes the tests start inherit it)."""

import os

os.environ.setdefault("DEMO_MODE", "auto")

from mmsportal.settings import *  # noqa: E402, F403
