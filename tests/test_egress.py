"""Where the proxy relays to (addon/egress.py).

In-process, with mitmproxy's test context, for listen addresses a test cannot bind (every
interface, a LAN address): the addon decides from the options and the client's listener.
Then end to end through a real mitmdump on 127.0.0.1 — nothing reaches its own admin
listener, however it is spelt — and, where this machine has a non-loopback address, on
that address: private destinations are refused unless configured.
"""

from __future__ import annotations

import json
import socket
import subprocess
from types import SimpleNamespace

import httpx
import pytest
from mitmproxy import connection
from mitmproxy.proxy import mode_specs, server_hooks
from mitmproxy.test import taddons, tflow, tutils

from addon.egress import Egress, is_internal, ip_of
from config.load import parse_config
from conftest import write_config
from proxy import DEFAULT_SCRIPT, MitmProxy

ADMIN_PORT = 4000
PROVIDERS = {"ollama": {"host": "localhost:11434", "api_style": "openai"},
             "vllm": {"host": "llm.internal.example.com", "api_style": "openai"}}


def make(listen_host: str = "", *, allowed=(), mode: str = "regular", resolve=None):
    config = parse_config({"providers": PROVIDERS,
                           "general_settings": {"allowed_private_destinations": list(allowed)}})
    addon = Egress(SimpleNamespace(runtime=SimpleNamespace(config=config)))
    tctx = taddons.context(addon)
    tctx.master.options.add_option("budget_admin_port", int, ADMIN_PORT, "")
    tctx.configure(addon, listen_host=listen_host, mode=[mode])
    if resolve is not None:
        table = dict(resolve)

        async def fake(host):
            ip = ip_of(host)
            return (ip,) if ip else tuple(ip_of(a) for a in table.get(host, ()))

        addon._addresses = fake
    return addon, tctx


def judge(addon, tctx, host: str, port: int = 80, method: str = "GET", mode: str = "regular",
          peer: str = "127.0.0.1"):
    """The flow's response after the egress hook (None: relayed)."""
    flow = tflow.tflow(req=tutils.treq(host=host, port=port, method=method.encode()))
    flow.client_conn.proxy_mode = mode_specs.ProxyMode.parse(mode)
    flow.client_conn.peername = (peer, 50000)
    hook = addon.http_connect if method == "CONNECT" else addon.request
    pending = hook(flow)
    if pending is not None:
        tctx.master.event_loop.run_until_complete(pending)
    return flow.response


def refused(response) -> str:
    assert response is not None and response.status_code == 403
    err = json.loads(response.content)["error"]
    assert err["type"] == "destination_forbidden" and err["code"] == "403"
    return err["message"]


# -- the admin listener, whatever the proxy listens on ---------------------------------------

ADMIN_SPELLINGS = ["127.0.0.1", "localhost", "LOCALHOST.", "::1", "0.0.0.0", "::ffff:127.0.0.1", "127.0.0.2", "::"]


@pytest.mark.parametrize("listen_host", ["", "127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize("host", ADMIN_SPELLINGS)
def test_the_admin_listener_is_never_a_destination(listen_host, host):
    addon, tctx = make(listen_host)
    with tctx:
        for method in ("GET", "CONNECT"):
            assert "admin listener" in refused(judge(addon, tctx, host, ADMIN_PORT, method))


def test_names_resolving_to_this_machine_and_its_own_addresses_are_the_admin_listener_too():
    own = _own_address()
    addon, tctx = make("127.0.0.1", resolve={"rebound.example": ["127.0.0.1"], "lan-me.example": [own or "127.0.0.1"],
                                             "elsewhere.example": ["93.184.215.14"]})
    with tctx:
        assert "admin listener" in refused(judge(addon, tctx, "rebound.example", ADMIN_PORT))
        assert "admin listener" in refused(judge(addon, tctx, "lan-me.example", ADMIN_PORT))
        if own:
            assert "admin listener" in refused(judge(addon, tctx, own, ADMIN_PORT, "CONNECT"))
        assert judge(addon, tctx, "elsewhere.example", ADMIN_PORT) is None  # another machine's port 4000
        assert judge(addon, tctx, "127.0.0.1", ADMIN_PORT + 1) is None  # loopback listener: loopback is fine


def test_with_the_admin_listener_off_its_port_is_an_ordinary_port():
    addon, tctx = make("127.0.0.1")
    with tctx:
        tctx.configure(addon, budget_admin_port=0)
        assert judge(addon, tctx, "127.0.0.1", ADMIN_PORT) is None


def test_a_loopback_listener_judges_only_the_admin_port():
    addon, tctx = make("127.0.0.1")
    with tctx:
        flow = tflow.tflow(req=tutils.treq(host="10.0.0.5", port=80))
        assert addon.request(flow) is None  # no coroutine, no lookup: nothing to await per request
        for host in ("10.0.0.5", "169.254.169.254", "127.0.0.1", "fd00::1"):
            assert judge(addon, tctx, host, 8000) is None


# -- a listener other machines can reach ----------------------------------------------------

PRIVATE = ["10.0.0.5", "172.16.3.4", "192.168.1.7", "127.0.0.1", "127.8.9.10", "169.254.169.254", "0.0.0.0",
           "100.64.0.1", "::1", "fd00::1", "fe80::1", "::ffff:10.0.0.5", "::ffff:127.0.0.1", "localhost"]


@pytest.mark.parametrize("host", PRIVATE)
def test_an_exposed_listener_refuses_private_destinations(host):
    addon, tctx = make("0.0.0.0")
    with tctx:
        for method in ("GET", "CONNECT"):
            message = refused(judge(addon, tctx, host, 8080, method, peer="192.168.1.50"))
            assert "allowed_private_destinations" in message


def test_an_exposed_listener_judges_names_by_what_they_resolve_to():
    addon, tctx = make("192.168.1.2", resolve={"internal.example": ["10.1.2.3"], "mixed.example": ["93.184.215.14",
                                                                                                     "10.1.2.3"],
                                               "api.openai.com": ["162.159.140.245"]})
    with tctx:
        assert "10.1.2.3" in refused(judge(addon, tctx, "internal.example", 443, "CONNECT"))
        assert "10.1.2.3" in refused(judge(addon, tctx, "mixed.example", 443, "CONNECT"))
        assert judge(addon, tctx, "api.openai.com", 443, "CONNECT") is None
        assert judge(addon, tctx, "93.184.215.14", 80) is None


def test_configured_providers_and_allowed_destinations_are_reachable_from_an_exposed_listener():
    addon, tctx = make("0.0.0.0", allowed=["10.20.0.0/16", "ollama.lan:11434", "fd12::/16"],
                       resolve={"llm.internal.example.com": ["10.9.9.9"], "ollama.lan": ["192.168.5.5"]})
    with tctx:
        assert judge(addon, tctx, "localhost", 11434) is None  # providers: ollama: host: localhost:11434
        assert "allowed_private_destinations" in refused(judge(addon, tctx, "localhost", 11435))  # not that port
        assert judge(addon, tctx, "llm.internal.example.com", 443, "CONNECT") is None  # any port: no port given
        assert judge(addon, tctx, "10.20.3.4", 8000) is None
        assert judge(addon, tctx, "fd12::9", 8000) is None
        assert judge(addon, tctx, "ollama.lan", 11434) is None
        refused(judge(addon, tctx, "ollama.lan", 22))
        refused(judge(addon, tctx, "10.21.0.1", 8000))
        # the admin listener stays refused whatever the allow list says
        tctx.configure(addon, budget_admin_port=11434)
        assert "admin listener" in refused(judge(addon, tctx, "localhost", 11434))


def test_a_reverse_proxy_reaches_the_target_it_was_set_up_for():
    addon, tctx = make("0.0.0.0", mode="reverse:http://127.0.0.1:8000")
    with tctx:
        assert judge(addon, tctx, "127.0.0.1", 8000, mode="reverse:http://127.0.0.1:8000") is None
        refused(judge(addon, tctx, "127.0.0.1", 8001, mode="reverse:http://127.0.0.1:8000"))


def test_a_listener_with_its_own_loopback_address_is_local():
    addon, tctx = make("0.0.0.0", mode="regular@127.0.0.1:8081")
    with tctx:
        assert judge(addon, tctx, "10.0.0.5", 80, mode="regular@127.0.0.1:8081") is None
        refused(judge(addon, tctx, "10.0.0.5", 80, mode="regular"))


def test_the_address_mitmproxy_is_about_to_connect_to_is_judged_after_rewrites():
    """Script hooks run before --map-remote: a request for a public host rewritten to a
    private one is refused before mitmproxy connects (no connection is opened)."""
    addon, tctx = make("0.0.0.0", resolve={"api.openai.com": ["162.159.140.245"]})
    with tctx:
        client = tflow.tclient_conn()
        for address, refused_ in ((("162.159.140.245", 443), False), (("127.0.0.1", 8080), True),
                                  (("localhost", 11434), False), (("10.0.0.5", 80), True)):
            server = connection.Server(address=address)
            pending = addon.server_connect(server_hooks.ServerConnectionHookData(server=server, client=client))
            if pending is not None:
                tctx.master.event_loop.run_until_complete(pending)
            assert (server.error is not None) == refused_, address
        via = connection.Server(address=("10.0.0.5", 80))
        via.via = ("http", ("10.0.0.1", 3128))  # an upstream proxy connects for us: not ours to judge
        assert addon.server_connect(server_hooks.ServerConnectionHookData(server=via, client=client)) is None


def test_the_connection_mitmproxy_opened_is_judged_by_the_address_it_reached():
    """A name that resolved to a public address when the request was judged, and to loopback
    when mitmproxy connected (DNS rebinding): the connection is cut before it is used."""
    addon, tctx = make("0.0.0.0")
    with tctx:
        closed = []
        writer = SimpleNamespace(close=lambda: closed.append(True))
        server = connection.Server(address=("rebind.example", 6379))
        client = tflow.tclient_conn()
        tctx.master.addons.add(SimpleNamespace(name="proxyserver", connections={
            client.id: SimpleNamespace(transports={server: SimpleNamespace(writer=writer)})}))
        server.peername = ("93.184.215.14", 6379)
        addon.server_connected(server_hooks.ServerConnectionHookData(server=server, client=client))
        assert not closed and server.error is None
        server.peername = ("127.0.0.1", 6379)
        addon.server_connected(server_hooks.ServerConnectionHookData(server=server, client=client))
        assert closed == [True] and "loopback or private" in server.error


# -- a listener left at mitmproxy's every-interface default --------------------------------


def test_an_unset_listen_host_serves_only_this_machine():
    addon, tctx = make("")
    with tctx:
        for peer, served in (("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
                             ("192.168.1.50", False), ("2001:db8::5", False)):
            client = tflow.tclient_conn()
            client.peername = (peer, 50000)
            addon.client_connected(client)
            assert (client.error is None) == served, peer
        # and, serving this machine only, it may relay to private destinations
        assert judge(addon, tctx, "10.0.0.5", 80) is None
    addon, tctx = make("0.0.0.0")
    with tctx:
        client = tflow.tclient_conn()
        client.peername = ("192.168.1.50", 50000)
        addon.client_connected(client)
        assert client.error is None  # told otherwise: serves the network


def test_address_classes():
    assert all(is_internal(ip_of(h)) for h in PRIVATE if ip_of(h))
    assert not any(is_internal(ip_of(h)) for h in ("8.8.8.8", "2606:4700::1111", "162.159.140.245"))


# -- end to end ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loopback_proxy(fake_provider_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("egress")
    config_path, _ = write_config({"general_settings": {"master_key": "sk-egress-master-0001"}}, tmp)
    p = MitmProxy(fake_provider_session.url, script=DEFAULT_SCRIPT, budget_config=config_path,
                  workdir=tmp / "mitm", loopback_only=False)
    p.start()
    yield p
    p.stop()


def curl(proxy: MitmProxy, url: str, *args: str, connect: bool = False) -> tuple[int, str]:
    """curl through the proxy: the status and body of a plain-HTTP proxied request, or with
    `connect` (a CONNECT tunnel, as HTTPS clients and tunnelling tools ask) the CONNECT's."""
    status = "%{http_connect}" if connect else "%{http_code}"
    out = subprocess.run(["curl", "-sS", "--noproxy", "", "-x", proxy.url, "-w", f"\n{status}",
                          *(["-p"] if connect else []), *args, url], capture_output=True, text=True, timeout=30)
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body + out.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "0.0.0.0", "127.1"])
def test_the_proxy_never_relays_to_its_own_admin_api(loopback_proxy, host):
    url = f"http://{host}:{loopback_proxy.admin_port}/key/list"
    auth = ("-H", "Authorization: Bearer sk-egress-master-0001")
    status, body = curl(loopback_proxy, url, *auth)
    assert status == 403 and json.loads(body)["error"]["type"] == "destination_forbidden", body
    assert curl(loopback_proxy, url, *auth, connect=True)[0] == 403


def test_the_proxy_still_relays_to_loopback_providers(loopback_proxy, fake_provider_session):
    """Listening on loopback, the fake provider on 127.0.0.1 is reached as in every other test."""
    r = loopback_proxy.openai_client(api_key="sk-egress-dev").chat.completions.create(
        model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert r.choices


def _own_address() -> str | None:
    """A non-loopback address of this machine, if it has one (a test can listen there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


@pytest.fixture
def lan_proxy(fake_provider_session, tmp_path):
    own = _own_address()
    if own is None:
        pytest.skip("this machine has no non-loopback address to listen on")

    def start(config: dict) -> MitmProxy:
        config_path, _ = write_config(config, tmp_path)
        p = MitmProxy(fake_provider_session.url, script=DEFAULT_SCRIPT, budget_config=config_path,
                      workdir=tmp_path / f"mitm-{len(started)}", listen_host=own)
        started.append(p)
        p.start()
        return p

    started: list[MitmProxy] = []
    yield start
    for p in started:
        p.stop()


def test_a_proxy_on_a_lan_address_refuses_loopback_unless_allowed(lan_proxy, fake_provider_session):
    """From a LAN listener, 127.0.0.1 is a private destination: named by the client, a 403;
    reached through --map-remote (as the tests send provider hosts to the fake on
    127.0.0.1), refused before mitmproxy connects. Both work once the operator allows it."""
    proxy = lan_proxy({})
    status, body = curl(proxy, f"{fake_provider_session.url}/v1/models")
    assert status == 403 and "allowed_private_destinations" in json.loads(body)["error"]["message"]
    before = len(fake_provider_session.requests())
    r = proxy.httpx_client().post("https://api.openai.com/v1/chat/completions", json={
        "model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": "Bearer sk-egress-dev"})
    assert r.status_code == 502 and "allowed_private_destinations" in r.text
    assert len(fake_provider_session.requests()) == before  # nothing reached it
    assert "refused to connect to 127.0.0.1" in proxy.log_text()

    allowed = lan_proxy({"general_settings": {"allowed_private_destinations": ["127.0.0.1"]}})
    assert curl(allowed, f"{fake_provider_session.url}/v1/models")[0] != 403
    r = allowed.openai_client(api_key="sk-egress-dev").chat.completions.create(
        model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert r.choices


def test_an_unset_listen_host_closes_connections_from_other_machines(fake_provider_session, tmp_path):
    own = _own_address()
    if own is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    config_path, _ = write_config({}, tmp_path)
    proxy = MitmProxy(fake_provider_session.url, script=DEFAULT_SCRIPT, budget_config=config_path,
                      workdir=tmp_path / "mitm", listen_host=None)
    proxy.start()
    try:
        # from this machine's loopback: served; to (and so from) its LAN address: closed unanswered
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=10) as c:
            assert c.get(f"{fake_provider_session.url}/v1/models").status_code != 403
        with pytest.raises(httpx.HTTPError):
            with httpx.Client(proxy=f"http://{own}:{proxy.port}", trust_env=False, timeout=10) as c:
                c.get(f"{fake_provider_session.url}/v1/models")
        assert "only clients on this machine are served" in proxy.log_text()
        assert "listen_host is not set" in proxy.log_text()
    finally:
        proxy.stop()
