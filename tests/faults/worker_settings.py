"""Settings for worker processes that fault tests start and kill.

The suite's settings, plus the lease margin from the environment: a killed
worker's lease must lapse within seconds, and the margin has no variable of
its own in config/settings.py.
"""

import os

from config.test_settings import *  # noqa: F403

WRITEBACK_LEASE_MARGIN_SECONDS = float(os.environ.get("WRITEBACK_LEASE_MARGIN_SECONDS", "30"))
