"""The `manage.py marketo_sandbox` command, run as a real process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from integrations.marketo.sandbox.seed import default_seed

REPO = Path(__file__).resolve().parents[2]


def run_command(*args) -> subprocess.Popen:
    env = {**os.environ, "DEBUG": "true", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "manage.py", "marketo_sandbox", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_command_serves_seed_and_prints_url(tmp_path):
    seed = default_seed()
    seed["munchkin_id"] = "123-ABC-456"
    seed["api_clients"][0]["client_secret"] = "other-secret"
    seed_path = tmp_path / "seed.json"
    seed_path.write_text(json.dumps(seed))

    process = run_command("--port", "0", "--seed", str(seed_path), "--daily-quota", "7")
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("Marketo sandbox listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[-1]
        token = requests.get(f"{url}/identity/oauth/token", params={
            "grant_type": "client_credentials", "client_id": "docket-demo-client", "client_secret": "other-secret",
        }, timeout=5)
        state = requests.get(f"{url}/_sandbox/state", timeout=5).json()["state"]

        assert token.status_code == 200
        assert state["munchkin_id"] == "123-ABC-456"
        assert state["limits"]["daily_quota"] == 7
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "other-secret" not in stderr
    assert "/identity/oauth/token 200" in stderr


def test_command_rejects_bad_seed(tmp_path):
    seed_path = tmp_path / "seed.json"
    seed_path.write_text('{"api_clients": [{"client_id": "a", "client_secret": "b", "user": "c", "permissions": ["Admin"]}]}')

    process = run_command("--port", "0", "--seed", str(seed_path))
    _, stderr = process.communicate(timeout=30)

    assert process.returncode != 0
    assert "Unknown permission 'Admin'" in stderr
