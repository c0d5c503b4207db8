"""How long a pending write waits for others to share its Marketo calls.

A batch is sent when it contains 300 records or its oldest record has waited
the batch window. The window is at least WRITEBACK_BATCH_WINDOW_SECONDS.
It is also at least the paced interval of the connection's daily budget
(`quota.paced_interval_seconds`, 13.8 s with the default budget). A steady
stream of conversations therefore stays within Docket's share of the quota
until the quota day ends. A full batch goes at once, because it
already costs the fewest calls per record.
"""

from datetime import timedelta

from django.conf import settings

from integrations.marketo import quota


def batch_window(connection) -> timedelta:
    """Return the batch window of `connection`; 0 when WRITEBACK_BATCH_WINDOW_SECONDS is 0 (send at once)."""
    configured = settings.WRITEBACK_BATCH_WINDOW_SECONDS
    if configured <= 0:
        return timedelta(0)
    return timedelta(seconds=max(configured, quota.paced_interval_seconds(connection)))
