"""A scripted OpenAI-compatible chat completions server for tests, on 127.0.0.1.

Each test scripts the responses, in order, that POST /v1/chat/completions
returns, and then reads `requests` to see what the client sent. A request
with no scripted response left gets HTTP 500 with `x-should-retry: false`,
so a test that makes more calls than it scripted fails instead of hanging
in retries.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

FAKE_API_KEY = "sk-test-not-a-real-key"
DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"


@dataclass
class ScriptedResponse:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)
    # Seconds to wait before responding, to make the client time out.
    delay: float = 0.0


@dataclass
class RecordedRequest:
    path: str
    headers: dict
    body: dict
    received_at: float


def completion(content=None, *, refusal=None, model=DEFAULT_MODEL, finish_reason="stop", usage=True) -> ScriptedResponse:
    """Build a chat completion response with one choice."""
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish_reason,
            }
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876}
    return json_response(200, body)


def decision(enroll: bool, reason: str, evidence: list, **options) -> ScriptedResponse:
    """Build a completion whose content is a decision in the enrollment_decision schema."""
    return completion(json.dumps({"enroll": enroll, "reason": reason, "evidence": evidence}), **options)


def no_choices() -> ScriptedResponse:
    response = completion("unused")
    body = json.loads(response.body)
    body["choices"] = []
    return json_response(200, body)


def error_response(status: int, message: str, headers: dict | None = None) -> ScriptedResponse:
    body = {"error": {"message": message, "type": "test_error", "code": None, "param": None}}
    return json_response(status, body, headers)


def rate_limited(retry_after: str) -> ScriptedResponse:
    return error_response(429, "Rate limit reached for requests.", {"Retry-After": retry_after})


def server_error() -> ScriptedResponse:
    return error_response(500, "The server had an error while processing your request.")


def delayed(response: ScriptedResponse, seconds: float) -> ScriptedResponse:
    response.delay = seconds
    return response


def json_response(status: int, body: dict, headers: dict | None = None) -> ScriptedResponse:
    return ScriptedResponse(status, json.dumps(body).encode("utf-8"), headers or {})


class FakeOpenAI:
    """The server: `script()` queues responses, `requests` lists what arrived."""

    def __init__(self):
        self.requests: list[RecordedRequest] = []
        self._responses: list[ScriptedResponse] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def stop(self) -> None:
        # Wakes handlers still sleeping in a delay so shutdown does not wait for them.
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def script(self, *responses: ScriptedResponse) -> None:
        with self._lock:
            self._responses.extend(responses)

    def _next_response(self, request: RecordedRequest) -> ScriptedResponse:
        with self._lock:
            self.requests.append(request)
            if self._responses:
                return self._responses.pop(0)
        return error_response(500, "The fake OpenAI server has no scripted response left.", {"x-should-retry": "false"})

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw_body = self.rfile.read(length)
                if self.path != "/v1/chat/completions":
                    self._send(error_response(404, f"Unknown path {self.path}."))
                    return

                request = RecordedRequest(
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=json.loads(raw_body),
                    received_at=time.monotonic(),
                )
                response = fake._next_response(request)
                if response.delay and fake._stopping.wait(response.delay):
                    return
                self._send(response)

            def _send(self, response: ScriptedResponse):
                try:
                    self.send_response(response.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(response.body)))
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(response.body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up on a delayed response and closed the connection.
                    pass

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def fake_openai(settings):
    """Start a FakeOpenAI and point the OpenAI settings at it, with a 0.5 s timeout and 2 retries."""
    server = FakeOpenAI().start()
    settings.OPENAI_API_KEY = FAKE_API_KEY
    settings.OPENAI_BASE_URL = server.base_url
    settings.OPENAI_MODEL = "gpt-4o-mini"
    settings.OPENAI_TIMEOUT_SECONDS = 0.5
    settings.OPENAI_MAX_RETRIES = 2
    yield server
    server.stop()
