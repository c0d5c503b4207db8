"""HTTP layer of the Marketo sandbox: routing, auth, limits, faults, access log.

Checks for `/rest/...` run in this order:
  1. 414 (URI over 8 KB) and 413 (body over 1 MB), as HTTP statuses.
  2. 601/602 from the bearer token.
  3. 605 for a known path called with another method.
  4. 607, 606, 615 from the limits. This and every later outcome counts as a call.
  5. 610 for an unknown path.
  6. 603 from the API client's role.
  7. Injected faults, then the endpoint itself.
Unknown `/rest` paths get HTTP 200 with code 610, following
Marketo's rule that API failures come back as HTTP 200.

The access log prints method, path without query string, and status only,
because the token request carries the client secret in its query string.
"""

import gzip
import itertools
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import control
from .auth import authenticate, check_permission, issue_token
from .errors import UNCOUNTED_CODES, ApiError, HttpError, MESSAGES
from .limits import LimitSettings
from .request import Request, parse_query
from .routes import match_route
from .seed import load_seed
from .state import SandboxState

__all__ = ["SandboxServer", "load_seed"]

logger = logging.getLogger("integrations.marketo.sandbox")
# One line per request, written only when the server was built with access_log=True.
access_logger = logging.getLogger("integrations.marketo.sandbox.access")

MAX_URI_BYTES = 8 * 1024
MAX_BODY_BYTES = 1024 * 1024
# A body up to this size is read and discarded before returning 413, so the
# client sees the response instead of a reset connection.
MAX_DRAINED_BYTES = 64 * 1024 * 1024
GZIP_MIN_BYTES = 1024
LOOPBACK = ("127.0.0.1", "::1")
GATEWAY_PAGE = "<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
_request_counter = itertools.count(1)


def _request_id() -> str:
    return f"{next(_request_counter):x}#{int(time.time() * 1000):x}"


class SandboxServer:
    """A Marketo-compatible HTTP server on 127.0.0.1, with in-memory state.

    `seed` is a seed dict (None loads the bundled demo seed); port 0 picks a
    free port. The keyword limits match Marketo's defaults and can be changed
    at run time through `POST /_sandbox/set_limits`. `clock` returns epoch
    seconds and drives token expiry, rate windows and the quota day.
    `access_log` turns on one INFO line per request (method, path, status),
    off by default so tests stay quiet.
    """

    def __init__(
        self,
        seed: dict | None = None,
        port: int = 0,
        *,
        rate_limit_calls: int = 100,
        rate_window_seconds: float = 20.0,
        max_concurrent: int = 10,
        daily_quota: int = 50000,
        token_ttl_seconds: float = 3600,
        clock=None,
        control_enabled: bool = True,
        access_log: bool = False,
    ):
        limits = LimitSettings(
            rate_limit_calls=rate_limit_calls,
            rate_window_seconds=rate_window_seconds,
            max_concurrent=max_concurrent,
            daily_quota=daily_quota,
            token_ttl_seconds=token_ttl_seconds,
        )
        self.state = SandboxState(seed, limits, clock)
        self.control_enabled = control_enabled
        self.access_log = access_log
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.sandbox = self
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.state.base_url = self.url
        self._thread = None

    def start(self) -> "SandboxServer":
        """Serve in a background daemon thread and return self."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name=f"marketo-sandbox-{self.port}", daemon=True)
        self._thread.start()
        logger.info("Marketo sandbox started at %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop` is called or the process is interrupted."""
        logger.info("Marketo sandbox serving at %s", self.url)
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        logger.info("Marketo sandbox at %s stopped", self.url)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the
    # second write waits for a delayed ACK and every call takes ~40 ms more.
    disable_nagle_algorithm = True
    server_version = "MarketoSandbox/1.0"
    sys_version = ""

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PATCH(self):
        self._handle("PATCH")

    # --- logging: never print a query string --------------------------------

    def _safe_path(self) -> str:
        path = getattr(self, "path", None) or "-"
        return path.split("?", 1)[0][:200]

    def log_request(self, code="-", size="-"):
        if self.server.sandbox.access_log:
            access_logger.info("%s %s %s", getattr(self, "command", None) or "-", self._safe_path(), code)

    def log_error(self, format, *args):
        # http.server's own error messages can embed the raw request line.
        logger.warning("HTTP error on %s %s", getattr(self, "command", None) or "-", self._safe_path())

    def log_message(self, format, *args):
        logger.debug("HTTP message on %s", self._safe_path())

    # --- responses -----------------------------------------------------------

    def _send_bytes(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        accepts_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        extra = dict(headers or {})
        if accepts_gzip and len(body) >= GZIP_MIN_BYTES:
            body = gzip.compress(body)
            extra["Content-Encoding"] = "gzip"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode("utf-8")
        self._send_bytes(status, body, "application/json;charset=UTF-8", headers)

    def _send_failure(self, state, error: ApiError, *, admitted_user: str | None = None) -> None:
        state.limiter.record_error(error.code)
        if admitted_user is not None and error.code in UNCOUNTED_CODES:
            state.limiter.refund(admitted_user, self._safe_path())
        self._send_json(200, {"requestId": _request_id(), "success": False, "errors": [{"code": error.code, "message": error.message}]})

    def _send_success(self, payload: dict) -> None:
        response = {"requestId": _request_id(), "success": True}
        if payload.pop("no_result", False):
            payload.pop("result", None)
            response.update(payload)
        else:
            response.update({"result": payload.pop("result", None), "errors": [], "warnings": []})
            response.update(payload)
            if response["result"] is None:
                del response["result"]
        self._send_json(200, response)

    def _send_http_error(self, status: int, payload: dict | None = None) -> None:
        if status >= 500 and payload is None:
            page = GATEWAY_PAGE.format(status=f"{status} {self.responses.get(status, ('Error',))[0]}")
            self._send_bytes(status, page.encode(), "text/html")
        else:
            self._send_json(status, payload or {"error": self.responses.get(status, ("Error",))[0]})

    def _drop(self) -> None:
        """Close the connection without writing a response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self.server.sandbox.access_log:
            access_logger.info("%s %s dropped by fault", self.command, self._safe_path())

    # --- dispatch ------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        """Read the request body, or send 413 and return None when it is over 1 MB."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._send_http_error(400, {"error": "Bad Request", "message": "Content-Length must be an integer"})
            return None
        if length > MAX_BODY_BYTES:
            if length <= MAX_DRAINED_BYTES:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 65536))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            self.close_connection = True
            self._send_http_error(413, {
                "error": "Request Entity Too Large",
                "message": f"Request body is {length} bytes; the maximum is {MAX_BODY_BYTES}. Split the batch.",
            })
            return None
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        sandbox = self.server.sandbox
        if len(self.path.encode("utf-8")) > MAX_URI_BYTES:
            self.close_connection = True
            self._send_http_error(414, {
                "error": "Request-URI Too Long",
                "message": f"URI is over {MAX_URI_BYTES} bytes; send POST with _method=GET and the parameters as a form body.",
            })
            return
        body = self._read_body()
        if body is None:
            return

        path, _, query_string = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(method=method, path=path, query=parse_query(query_string), headers=headers, body=body)

        if path.startswith("/_sandbox/"):
            self._control(sandbox, request)
        elif path == "/identity/oauth/token":
            self._identity(sandbox.state, request)
        elif path.startswith("/rest/"):
            self._rest(sandbox.state, request)
        else:
            self._send_http_error(404, {"error": "Not Found", "message": f"No sandbox resource at {path}; REST calls go under /rest/."})

    def _control(self, sandbox, request: Request) -> None:
        if not sandbox.control_enabled:
            self._send_http_error(404, {"ok": False, "error": "The control endpoint is disabled."})
            return
        if self.client_address[0] not in LOOPBACK:
            self._send_http_error(403, {"ok": False, "error": "The control endpoint accepts loopback clients only."})
            return
        name = request.path[len("/_sandbox/"):].strip("/")
        operation = control.CONTROL_ROUTES.get((request.method, name))
        if operation is None:
            known = sorted(f"{method} /_sandbox/{path}" for method, path in control.CONTROL_ROUTES)
            self._send_http_error(404, {"ok": False, "error": f"Unknown control operation {request.method} {name!r}.", "known": known})
            return
        try:
            payload = json.loads(request.body.decode("utf-8")) if request.body.strip() else {}
            if not isinstance(payload, dict):
                raise control.ControlError("The control request body must be a JSON object.")
            with sandbox.state.lock:
                result = operation(sandbox.state, payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._send_json(400, {"ok": False, "error": "The control request body is not valid JSON."})
            return
        except control.ControlError as error:
            self._send_json(400, {"ok": False, "error": str(error)})
            return
        self._send_json(200, {"ok": True, **result})

    def _apply_fault(self, state, fault: dict | None, *, admitted_user: str | None = None) -> bool:
        """Apply the part of a fault that acts before the endpoint, and return True if a response was sent."""
        if fault is None:
            return False
        if fault["delay_seconds"]:
            time.sleep(fault["delay_seconds"])
        if fault["mode"] == "drop_before_apply":
            self._drop()
            return True
        if fault["code"]:
            error = ApiError(fault["code"], fault["message"] or MESSAGES.get(fault["code"], "Injected error"))
            self._send_failure(state, error, admitted_user=admitted_user)
            return True
        if fault["http_status"]:
            self._send_http_error(fault["http_status"])
            return True
        return False

    def _identity(self, state, request: Request) -> None:
        if request.method not in ("GET", "POST"):
            self._send_http_error(405, {"error": "method_not_allowed", "error_description": "Use GET or POST"})
            return
        fault = state.faults.take(request.method, request.path)
        if self._apply_fault(state, fault):
            return
        try:
            with state.lock:
                token = issue_token(state, request)
        except HttpError as error:
            self._send_json(error.status, error.body, error.headers)
            return
        if fault and fault["mode"] == "drop_after_apply":
            self._drop()
            return
        self._send_json(200, token)

    def _rest(self, state, request: Request) -> None:
        method = request.method
        form_override = method == "POST" and (request.query.get("_method") or [""])[0].upper() == "GET"
        if form_override:
            method = "GET"

        try:
            with state.lock:
                client = authenticate(state, request.headers)
        except ApiError as error:
            self._send_failure(state, error)
            return
        route, path_params, path_exists = match_route(method, request.path)
        if route is None and path_exists:
            self._send_failure(state, ApiError("605", MESSAGES["605"].format(method=request.method)))
            return

        limiter = state.limiter
        rejection, call_id = limiter.start_call(client["user"], request.path)
        if rejection is not None:
            self._send_failure(state, ApiError(*rejection))
            return
        try:
            self._run_endpoint(state, request, route, path_params, client, method, form_override)
        finally:
            limiter.release(call_id)

    def _run_endpoint(self, state, request, route, path_params, client, method, form_override) -> None:
        try:
            if route is None:
                raise ApiError("610", MESSAGES["610"])
            with state.lock:
                check_permission(client, route.permission)
            fault = state.faults.take(method, request.path)
            if self._apply_fault(state, fault, admitted_user=client["user"]):
                return

            request.client = client
            request.path_params = path_params
            with state.lock:
                if form_override or route.body == "form":
                    request.parse_form()
                payload = route.handler(state, request)
        except ApiError as error:
            self._send_failure(state, error, admitted_user=client["user"])
            return
        except Exception:
            logger.exception("Sandbox endpoint %s %s failed", method, request.path)
            self._send_failure(state, ApiError("611", MESSAGES["611"]), admitted_user=client["user"])
            return

        if fault and fault["delay_after_apply_seconds"]:
            time.sleep(fault["delay_after_apply_seconds"])
        if fault and fault["mode"] == "drop_after_apply":
            self._drop()
            return
        self._send_success(payload)
