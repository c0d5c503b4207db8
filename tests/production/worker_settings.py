"""Settings of the worker processes that test_two_workers.py starts.

The test settings, with the django-q2 queue named by DOCKET_TEST_QUEUE: a
queue of the test's own on the shared Redis, so workers of other runs never
take its tasks and its workers never take theirs. The queue name is not the
signing salt (Q_CLUSTER "name"), so tasks the test process signs still verify.
"""

import os

from config.test_settings import *  # noqa: F403
from config.test_settings import Q_CLUSTER

Q_CLUSTER = {**Q_CLUSTER, "cluster_name": os.environ["DOCKET_TEST_QUEUE"]}
