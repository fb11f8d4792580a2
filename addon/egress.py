"""Who may use the proxy, and where it relays to.

A proxy anyone on the network can use reaches whatever its host can: the admin API on
127.0.0.1:4000 (full admin with a guessable master key), a database on loopback, the
cloud's metadata service on 169.254.169.254. So:

- mitmproxy listens on every interface unless `listen_host` is set, and a script loads too
  late to change where it binds. A listener left at that default serves loopback clients
  only: anyone else's connection is closed at once. Setting `listen_host` (or a mode's
  `@host:port`) is how an operator says otherwise.
- Nothing is ever relayed to spendgate's own admin listener, whatever the proxy listens on
  and however the destination is spelt (`localhost`, `127.0.0.1`, `[::1]`, `0.0.0.0`, a
  name resolving to them, one of this machine's addresses).
- From a listener other machines can reach, no destination that is or resolves to a
  loopback, private (RFC 1918, ULA), link-local or other non-public address is relayed to,
  unless it is a configured provider host (a local vLLM or Ollama) or listed in
  `general_settings.allowed_private_destinations`.

Destinations are judged three times. At the request (CONNECT, or a plain-HTTP request),
as the client named it: a refusal is a 403 in the API's error shape. Before mitmproxy
connects, by the address it is about to connect to — a script's hooks run before
`--map-remote` and other rewrites, so this is where a rewritten destination is seen: a
refusal is mitmproxy's 502 naming the reason, and no connection is opened. After it
connected, by the address it actually reached: a name that resolved elsewhere by then
(DNS rebinding) has its connection cut before a byte is sent.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import re
import socket
import time
from typing import TYPE_CHECKING

from mitmproxy import ctx, http
from mitmproxy.connection import Client
from mitmproxy.proxy import mode_specs, server_hooks

from addon.replies import error_response
from config.schema import SpendgateConfig

if TYPE_CHECKING:
    from metering.runtime import ProcessState

log = logging.getLogger("spendgate")

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
RESOLVE_TTL = 30.0  # seconds a name's addresses are reused for judging
RESOLVE_CACHE = 4096  # names kept
WARN_ONCE = 1024  # client addresses warned about before the warnings stop


class Reach(enum.Enum):
    LOCAL = "loopback"  # a loopback listener, or no listener at all (local capture mode)
    UNSET = "unset"  # mitmproxy's default listen_host: every interface; serve loopback clients only
    EXPOSED = "exposed"  # a listen address other machines can reach


def ip_of(host: str) -> IP | None:
    """`host` as an IP address (brackets, zone and IPv4-mapped form undone), or None for a name."""
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip


def is_loopback_host(host: str) -> bool:
    """A listen address or destination only this machine can use."""
    if host.lower().rstrip(".") in LOOPBACK_NAMES:
        return True
    ip = ip_of(host)
    return ip is not None and ip.is_loopback


def is_internal(ip: IP) -> bool:
    """Loopback, private, link-local, unspecified, shared or reserved: not the public internet."""
    return not ip.is_global or ip.is_multicast or (ip.version == 6 and ip.is_site_local)


def is_this_machine(ip: IP) -> bool:
    """An address that reaches this machine: loopback, unspecified (0.0.0.0 connects to
    this host), or one of its own interface addresses (it can be bound to)."""
    if ip.is_loopback or ip.is_unspecified:
        return True
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((str(ip), 0))
    except OSError:
        return False
    return True


def reach(mode: mode_specs.ProxyMode) -> Reach:
    """Who can connect to the listener of `mode`, as the options configure it."""
    if mode.listen_port(ctx.options.listen_port) is None:
        return Reach.LOCAL
    host = mode.listen_host(ctx.options.listen_host)
    if not host:
        return Reach.UNSET
    return Reach.LOCAL if is_loopback_host(host) else Reach.EXPOSED


def listeners(kind: Reach) -> list[str]:
    """The configured listeners (`host:port`) of one kind, for start-up warnings."""
    out = []
    for spec in ctx.options.mode:
        try:
            mode = mode_specs.ProxyMode.parse(spec)
        except ValueError:
            continue
        if reach(mode) is kind:
            out.append(f"{mode.listen_host(ctx.options.listen_host) or '*'}:{mode.listen_port(ctx.options.listen_port)}")
    return out


def _refusal(host: str, port: int, reason: str) -> str:
    return f"spendgate does not relay to {host}:{port}: {reason}"


def _host_port(value: str) -> tuple[str, int | None]:
    """A config `host[:port]` (as config.schema validates it) as (name, port or None)."""
    m = re.fullmatch(r"\[(.+)\](?::(\d+))?|([^:]+)(?::(\d+))?", value.strip().lower())
    if m is None:
        return value.lower(), None
    name = (m.group(1) or m.group(3)).rstrip(".")
    port = m.group(2) or m.group(4)
    return name, int(port) if port else None


class _Allowed:
    """The private destinations a config allows: provider hosts, and the operator's list."""

    def __init__(self, config: SpendgateConfig):
        names: set[tuple[str, int | None]] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for provider in config.providers.values():
            if provider.host:
                names.add(_host_port(provider.host))
        for entry in config.general_settings.allowed_private_destinations:
            try:
                networks.append(ipaddress.ip_network(entry))
            except ValueError:
                names.add(_host_port(entry))
        self.names = frozenset(names)
        self.networks = tuple(networks)

    def name(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]").rstrip(".")
        return (host, port) in self.names or (host, None) in self.names

    def address(self, ip: IP) -> bool:
        return any(ip in net for net in self.networks if net.version == ip.version)


EXAMPLE_MASTER_KEYS = frozenset({"sk-1234"})  # config/example.yaml's, and LiteLLM's docs'


class Egress:
    """Refuses relaying to the admin listener, and to private destinations from listeners
    others can reach; closes connections from other machines to a listener left at
    mitmproxy's every-interface default."""

    def __init__(self, state: ProcessState):
        self.state = state
        self.admin_port = 0
        self._reach: dict[mode_specs.ProxyMode, Reach] = {}  # by listener mode: options read once, not per flow
        self._last_mode: mode_specs.ProxyMode | None = None  # the last one asked about, and its reach
        self._last_reach = Reach.UNSET
        self._allowed: tuple[SpendgateConfig | None, _Allowed | None] = (None, None)
        self._resolved: dict[str, tuple[float, tuple[IP, ...]]] = {}
        self._warned: set[str] = set()

    def configure(self, updated: set[str]) -> None:
        if "budget_admin_port" in updated:
            self.admin_port = ctx.options.budget_admin_port
        if updated & {"listen_host", "listen_port", "mode"}:
            self._reach.clear()
            self._last_mode = None

    def running(self) -> None:
        if ctx.options.budget_admin_port:
            self._warn_example_key()
        if listeners(Reach.UNSET):
            log.warning("spendgate: listen_host is not set, so mitmproxy listens on every interface; spendgate "
                        "serves clients on this machine only. To serve others, set --listen-host (e.g. 0.0.0.0) "
                        "and read the README's Security section first.")

    def _warn_example_key(self) -> None:
        """The example config's master key is full admin for anyone who can reach a listener."""
        admin_host = ctx.options.budget_admin_host
        rt = self.state.runtime
        master = rt.config.general_settings.master_key if rt else None
        if master is None or master.get_secret_value() not in EXAMPLE_MASTER_KEYS:
            return
        reachable = listeners(Reach.EXPOSED)
        if not is_loopback_host(admin_host):
            reachable.append(f"the admin listener {admin_host or '*'}:{ctx.options.budget_admin_port}")
        if reachable:
            log.warning(
                "\n" + "!" * 78 + "\n"
                "spendgate: general_settings.master_key is the example config's well-known key, and other\n"
                "machines can reach %s. Anyone who reaches the admin API with it is full admin.\n"
                "Set a long random secret instead: master_key: os.environ/SPENDGATE_MASTER_KEY\n" + "!" * 78,
                ", ".join(reachable))

    def reach(self, mode: mode_specs.ProxyMode) -> Reach:
        if mode is self._last_mode:  # (asked of every request; a mode hashes in Python)
            return self._last_reach
        kind = self._reach.get(mode)
        if kind is None:
            kind = self._reach[mode] = reach(mode)
        self._last_mode, self._last_reach = mode, kind
        return kind

    # -- who may connect --------------------------------------------------------------------

    def client_connected(self, client: Client) -> None:
        if self.reach(client.proxy_mode) is not Reach.UNSET or client.peername is None:
            return
        peer = client.peername[0]
        if is_loopback_host(peer):
            return
        client.error = "spendgate serves clients on this machine only while listen_host is unset"
        if peer not in self._warned and len(self._warned) < WARN_ONCE:
            self._warned.add(peer)
            log.warning("spendgate: closed a connection from %s: listen_host is not set, so only clients on this "
                        "machine are served (set --listen-host to serve others)", peer)

    # -- where requests may go --------------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow):
        return self._check(flow)

    def request(self, flow: http.HTTPFlow):
        return self._check(flow)

    def _check(self, flow: http.HTTPFlow):
        """A coroutine judging the flow's destination, or None when nothing can be wrong
        with it (a loopback listener, and not the admin port: no lookup, no await)."""
        if flow.response or flow.error or not flow.live:
            return None
        exposed = self._judging(flow.client_conn.proxy_mode, flow.request.port)
        if exposed is None:
            return None
        return self._refuse_if_forbidden(flow, flow.request.host, flow.request.port, exposed)

    def _judging(self, mode: mode_specs.ProxyMode, port: int) -> bool | None:
        """None when a destination on `port` needs no judging for a client of `mode`'s
        listener (a loopback one, and not the admin port); else whether it is exposed."""
        exposed = self.reach(mode) is Reach.EXPOSED
        if exposed or (self.admin_port and port == self.admin_port):
            return exposed
        return None

    async def _refuse_if_forbidden(self, flow: http.HTTPFlow, host: str, port: int, exposed: bool) -> None:
        reason = self.forbidden(host, port, await self._addresses(host), exposed, flow.client_conn.proxy_mode)
        if reason is not None:
            log.warning("spendgate: refused to relay %s %s:%s for %s: %s", flow.request.method, host, port,
                        flow.client_conn.peername[0] if flow.client_conn.peername else "?", reason)
            flow.response = error_response(403, "destination_forbidden", _refusal(host, port, reason))

    def server_connect(self, data: server_hooks.ServerConnectionHookData):
        """The address mitmproxy is about to connect to, after every rewrite."""
        target = None if data.server.error else self._server_target(data)
        return None if target is None else self._refuse_connection(data, *target)

    async def _refuse_connection(self, data: server_hooks.ServerConnectionHookData, host: str, port: int,
                                 exposed: bool) -> None:
        reason = self.forbidden(host, port, await self._addresses(host), exposed, data.client.proxy_mode)
        if reason is not None:
            log.warning("spendgate: refused to connect to %s:%s: %s", host, port, reason)
            data.server.error = _refusal(host, port, reason)

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        """The address mitmproxy actually reached (it resolves names itself, again)."""
        target = self._server_target(data)
        if target is None or data.server.peername is None:
            return
        host, port, exposed = target
        ip = ip_of(data.server.peername[0])
        reason = self.forbidden(host, port, (ip,) if ip else (), exposed, data.client.proxy_mode)
        if reason is not None:
            log.warning("spendgate: cut a connection to %s:%s (%s): %s", host, port, data.server.peername[0], reason)
            data.server.error = _refusal(host, port, reason)
            self._cut(data)

    def _server_target(self, data: server_hooks.ServerConnectionHookData) -> tuple[str, int, bool] | None:
        """(host, port, exposed) of a server connection to judge, or None: not ours to judge
        (through an upstream proxy, which is the one connected to) or nothing to judge."""
        server = data.server
        if server.via is not None or server.address is None:
            return None
        host, port = server.address[0], server.address[1]
        exposed = self._judging(data.client.proxy_mode, port)
        return None if exposed is None else (host, port, exposed)

    def forbidden(self, host: str, port: int, addresses: tuple[IP, ...], exposed: bool,
                  mode: mode_specs.ProxyMode) -> str | None:
        """Why relaying to `host:port` (which resolved to `addresses`) is refused, or None."""
        if self.admin_port and port == self.admin_port and (
                is_loopback_host(host) or any(is_this_machine(ip) for ip in addresses)):
            return "it is the proxy's own admin listener"
        if not exposed or self._by_operator(host, port, mode):
            return None
        bad = next((ip for ip in addresses if is_internal(ip) and not self.allowed().address(ip)), None)
        if bad is not None or (not addresses and is_loopback_host(host)):
            return (f"it is a loopback or private address ({bad or host}) and this proxy listens where other "
                    "machines can reach it; allow it in general_settings.allowed_private_destinations")
        return None

    def _by_operator(self, host: str, port: int, mode: mode_specs.ProxyMode) -> bool:
        """A configured provider host, an allowed name, or the target a reverse proxy was set up for."""
        if isinstance(mode, mode_specs.ReverseMode) and (host, port) == tuple(mode.address):
            return True
        return self.allowed().name(host, port)

    def allowed(self) -> _Allowed:
        """What the current config allows (rebuilt when a new config is loaded)."""
        rt = self.state.runtime
        config = rt.config if rt else None
        if self._allowed[0] is not config or self._allowed[1] is None:
            self._allowed = (config, _Allowed(config or SpendgateConfig()))
        return self._allowed[1]

    async def _addresses(self, host: str) -> tuple[IP, ...]:
        """The addresses `host` names: itself if it is one, else what it resolves to
        (cached for RESOLVE_TTL; empty if it does not resolve, mitmproxy then fails too)."""
        ip = ip_of(host)
        if ip is not None:
            return (ip,)
        now = time.monotonic()
        cached = self._resolved.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            infos = []
        found = tuple(dict.fromkeys(a for a in (ip_of(str(info[4][0])) for info in infos) if a is not None))
        if len(self._resolved) >= RESOLVE_CACHE:
            self._resolved.clear()
        self._resolved[host] = (now + RESOLVE_TTL, found)
        return found

    @staticmethod
    def _cut(data: server_hooks.ServerConnectionHookData) -> None:
        """Close the just-opened server connection before mitmproxy writes to it. mitmproxy
        has no hook result for that after connecting, so this reaches its connection handler."""
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = getattr(proxyserver, "connections", {}).get(data.client.id)
        io = getattr(handler, "transports", {}).get(data.server)
        if io is not None and io.writer is not None:
            io.writer.close()
