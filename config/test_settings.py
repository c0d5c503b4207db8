"""Settings for the test suite: the production settings with fixed test secrets.

DATABASE_URL and REDIS_URL still come from the environment, so the same
suite runs on SQLite with the ORM broker and on PostgreSQL with Redis.
"""

import os
import uuid

# Counters of one test run must not meet another run's in a shared Redis;
# worker processes that a test starts inherit the same prefix.
os.environ.setdefault("CACHE_KEY_PREFIX", f"test-{uuid.uuid4().hex[:12]}")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "VRyFPMYWEgkCuCY9ObzO8lldFHmArXldEJaZ6Dvh8TM=")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

from config.settings import *  # noqa: E402,F403

# Password hashing at full strength makes every login in a test slow.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
