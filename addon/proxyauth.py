"""Proxy authentication as identity: `HTTPS_PROXY=http://USER_ID:USER_KEY@proxy:8080`.

On a team egress proxy developers keep their own provider keys; the proxy credentials
say which user (and so which team) a call belongs to. USER_KEY is a key the admin API
issued to that user. With `general_settings.require_proxy_auth: true`, clients
without valid credentials get 407 before any request reaches a provider. The
password is checked by hash and never logged or forwarded.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import itemgetter
from typing import TYPE_CHECKING

from mitmproxy import http
from mitmproxy.addons.proxyauth import parse_http_basic_auth

from addon.replies import error_response
from metering.identity import check_proxy_credentials

if TYPE_CHECKING:
    from metering.runtime import ProcessState

PROXY_USER = "spendgate.proxy_user"  # flow.metadata: the user proxy auth proved
CHALLENGE = {"Proxy-Authenticate": 'Basic realm="spendgate"'}


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of a `Proxy-Authorization: Basic ...` value, or None."""
    if not header:
        return None
    try:
        _, user, password = parse_http_basic_auth(header)
    except ValueError:
        return None
    return (user, password) if user else None


class ProxyIdentity:
    def __init__(self, state: ProcessState):
        self.state = state
        self.users: dict[str, str] = {}  # client connection id → proven user id

    # The hooks below are plain functions that return a coroutine only when there is
    # something to check: mitmproxy awaits what a hook returns, and most requests (inside
    # a tunnel already authenticated, or with proxy auth off) need no await at all.

    def http_connect(self, flow: http.HTTPFlow):
        if self._has_work(flow):
            return self._connect(flow)
        return None

    async def _connect(self, flow: http.HTTPFlow) -> None:
        await self._authenticate(flow)
        # A CONNECT answered 200 remembers its user for every request in the tunnel.
        if flow.response is None and PROXY_USER in flow.metadata:
            self.users[flow.client_conn.id] = flow.metadata[PROXY_USER]

    def requestheaders(self, flow: http.HTTPFlow):
        if flow.response or flow.error or not flow.live:
            return None
        user = self.users.get(flow.client_conn.id)
        if user is not None:
            flow.metadata[PROXY_USER] = user
        elif flow.request.method != "CONNECT" and self._has_work(flow):
            return self._authenticate(flow)  # plain-HTTP proxying: credentials ride on each request
        return None

    def _has_work(self, flow: http.HTTPFlow) -> bool:
        """Credentials to check, or none where they are required."""
        rt = self.state.runtime
        return rt is not None and (
            rt.config.general_settings.require_proxy_auth or _has_proxy_authorization(flow.request.headers)
        )

    def client_disconnected(self, client) -> None:
        self.users.pop(client.id, None)

    async def _authenticate(self, flow: http.HTTPFlow) -> None:
        rt = self.state.runtime
        if rt is None:
            return
        header = flow.request.headers.pop("proxy-authorization", None)
        creds = basic_credentials(header)
        if creds is not None and await check_proxy_credentials(rt, *creds):
            flow.metadata[PROXY_USER] = creds[0]
            return
        if creds is not None or header is not None:
            flow.response = error_response(
                407, "proxy_authentication_error", "Invalid proxy credentials: use USER_ID:USER_KEY.", CHALLENGE
            )
        elif rt.config.general_settings.require_proxy_auth:
            flow.response = error_response(
                407, "proxy_authentication_required",
                "This proxy requires authentication: HTTPS_PROXY=http://USER_ID:USER_KEY@host:port", CHALLENGE,
            )


def _has_proxy_authorization(headers) -> bool:
    """`"proxy-authorization" in headers`, in one pass over the raw fields (asked of every
    request: mitmproxy's lookup decodes and lower-cases every name it passes)."""
    return b"proxy-authorization" in lower_header_names(headers.fields)


def lower_header_names(fields) -> Iterator[bytes]:
    """Each raw header name lower-cased, as an iterator made in C (no Python runs per header)."""
    return map(bytes.lower, map(_NAME, fields))


_NAME = itemgetter(0)
