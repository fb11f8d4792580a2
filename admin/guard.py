"""What the admin listener refuses before any handler runs, and how it logs requests.

- `Host` must be one of the listener's own names (`localhost`, an IP address, the
  `budget_admin_host` it listens on, or a name in `budget_admin_hostnames`): a web page
  whose own name was made to resolve to 127.0.0.1 (DNS rebinding) sends its own name,
  and is refused. An IP address is always accepted: no page can rebind one.
- A request line over `MAX_URI` bytes is a 414, headers over `MAX_HEADERS` a 431, a body
  declared over `MAX_BODY` a 413 — as JSON, in the API's error shape. (Tornado's own
  limits, which close the connection or answer a bare 400, are set above these:
  `HARD_HEADER_LIMIT` for headers, `MAX_BODY` for a chunked body, which declares no size.)
- The access log line of every request carries its query string through `redact()`, so
  `/key/info?key=sk-...` is never logged with its key (and a huge URL is logged cut short).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

import tornado.httputil
import tornado.web

from admin.errors import ApiError, send_error
from core.redact import redact

MAX_URI = 8 * 1024  # bytes of request target (path and query)
MAX_HEADERS = 32 * 1024  # bytes of header names and values
MAX_BODY = 1024 * 1024  # bytes of request body
HARD_HEADER_LIMIT = 1024 * 1024  # tornado closes the connection past this, without an answer
LOGGED_URI = 300  # characters of a request's URL in its access log line

access_log = logging.getLogger("tornado.access")

WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})


def _host_name(host: str) -> str:
    """`Host` without its port or IPv6 brackets, lower case, no trailing dot."""
    name, _ = tornado.httputil.split_host_and_port(host.strip().lower())
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return True


class AdminNames:
    """The names this listener answers to."""

    def __init__(self, listen_host: str, extra: Iterable[str] = ()):
        names = {"localhost", *(_host_name(n) for n in extra if n.strip())}
        if listen_host not in WILDCARDS:
            names.add(_host_name(listen_host))
        self.names = frozenset(names)

    def allows(self, host: str) -> bool:
        name = _host_name(host)
        return name in self.names or _is_ip(name)


def refusal(request: tornado.httputil.HTTPServerRequest, names: AdminNames) -> ApiError | None:
    """Why `request` is refused before routing, or None."""
    if not names.allows(request.host):
        return ApiError(403, f"Host {_host_name(request.host)!r} is not a name of this admin listener; add it to "
                        "the budget_admin_hostnames option if it should be", "permission_error", "Host")
    if len(request.uri or "") > MAX_URI:
        return ApiError(414, f"the request URL is {len(request.uri)} bytes; at most {MAX_URI}", param="url")
    size = sum(len(k) + len(v) + 4 for k, v in request.headers.get_all())
    if size > MAX_HEADERS:
        return ApiError(431, f"the request headers are {size} bytes; at most {MAX_HEADERS}", param="headers")
    length = request.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return ApiError(413, f"the request body is {int(length)} bytes; at most {MAX_BODY}", param="body")
    return None


class RefusalHandler(tornado.web.RequestHandler):
    """Answers a refused request with its error, whatever the method."""

    def initialize(self, error: ApiError) -> None:
        self.error = error

    def prepare(self) -> None:
        self.set_header("Cache-Control", "no-store")
        send_error(self, self.error)


@tornado.web.stream_request_body
class TooLargeHandler(RefusalHandler):
    """Answers before the body is read and closes the connection, never buffering the body.
    (Tornado would answer a bare 400 once it read past its own limit: it is raised to the
    declared size, so this answer is the one the client gets.)"""

    def prepare(self) -> None:
        self.request.connection.set_max_body_size(int(self.request.headers["Content-Length"]))
        self.set_header("Connection", "close")
        super().prepare()

    def data_received(self, chunk: bytes) -> None:
        pass


class GuardedApplication(tornado.web.Application):
    """The admin listener's tornado application: `refusal()` first, then the routes."""

    def __init__(self, handlers: list, names: AdminNames, **settings):
        super().__init__(handlers, **settings)
        self.admin_names = names

    def find_handler(self, request: tornado.httputil.HTTPServerRequest, **kwargs):
        refused = refusal(request, self.admin_names)
        if refused is not None:
            handler = TooLargeHandler if refused.status == 413 else RefusalHandler
            return self.get_handler_delegate(request, handler, {"error": refused})
        return super().find_handler(request, **kwargs)

    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        status = handler.get_status()
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        r = handler.request
        uri = redact(r.uri or "")
        if len(uri) > LOGGED_URI:
            uri = f"{uri[:LOGGED_URI]}... ({len(r.uri)} bytes)"
        access_log.log(level, "%d %s %s (%s) %.2fms", status, r.method, uri, r.remote_ip, 1000.0 * r.request_time())
