"""Run a real mitmdump subprocess in front of the fake provider, for end-to-end tests.

    with MitmProxy(fake.url, script="addon/budget.py", budget_config=cfg) as proxy:
        client = proxy.openai_client(api_key="sk-test")
        client.chat.completions.create(model="gpt-4o", messages=[...])

What the subprocess gets:
  --listen-host 127.0.0.1 --listen-port <free port>  (listen_host=: another address, None: no flag)
  --set confdir=<temp dir>          (mitmproxy writes its CA there: mitmproxy-ca-cert.pem)
  -s <script>                       (optional; script=None -> bare mitmdump)
  --set budget_config=<path>        (only when given)
  --set upstream_cert=false         (never resolve / connect to the real host for its cert)
  --set connection_strategy=lazy    (connect upstream only for a request that goes through)
  --map-remote #(?i)^https?://(?:api\\.openai\\.com|...)(?::\\d+)?/#http://127.0.0.1:<fake port>/
                                    (every built-in provider's hosts, from providers/registry.py;
                                    extra hosts)
  --set block_list=...              (loopback_only=True: any host that is not mapped or
                                    loopback gets an empty 502 from the proxy, so nothing can
                                    reach the internet)
  --set k=v                         for every extra option

Don't pass stream_large_bodies: it streams request bodies too, and mitmproxy then connects
upstream at `requestheaders`, before map_remote rewrote the host (a DNS lookup of the real
host, then 502). To see stream chunks as they come with bare mitmdump use
script=STREAM_ADDON (tests/e2e_stream_addon.py).

The map-remote spec is "#regex#replacement" (two parts; its first character is the
separator). A trailing "#" would make it a three-part "#filter#regex#replacement" spec, so
the replacement must not end with "#".
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping

import httpx

from providers.registry import BUILTIN

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCRIPT = REPO_ROOT / "addon" / "budget.py"
#: Pass-through addon that streams un-sized responses (SSE) instead of buffering them.
STREAM_ADDON = Path(__file__).resolve().parent / "e2e_stream_addon.py"

#: Hosts sent to the fake provider by default: every built-in provider's (a regex), from
#: the provider registry, so a provider added there is reachable in the tests at once.
PROVIDER_HOSTS_RE = "|".join(p.host_pattern for p in BUILTIN)
LOOPBACK_HOST_RE = r"^(127\.0\.0\.1|localhost|::1|\[::1\])$"


class ProxyStartError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _mitmdump_path() -> str:
    cand = Path(sys.executable).parent / "mitmdump"
    if cand.exists():
        return str(cand)
    found = shutil.which("mitmdump")
    if not found:
        raise ProxyStartError("mitmdump not found next to the interpreter or on PATH")
    return found


def _opt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def map_remote_spec(host_regex: str, target: str) -> str:
    """`#^https?://HOST(:port)?/#TARGET/` for a host regex (no anchors, no '#'): the first
    character is the spec's separator, and '#' leaves '|' free for the regex's alternatives."""
    subject = f"(?i)^https?://{host_regex}(?::\\d+)?/"
    replacement = target.rstrip("/") + "/"
    if "#" in subject or "#" in replacement:
        raise ValueError("map-remote parts must not contain '#' (the spec separator)")
    return f"#{subject}#{replacement}"


class MitmProxy:
    """A mitmdump subprocess. Use as a context manager, or call start()/stop()."""

    def __init__(
        self,
        upstream: str,
        *,
        script: str | os.PathLike | None = None,
        budget_config: str | os.PathLike | None = None,
        extra_hosts: Iterable[str] = (),
        options: Mapping[str, Any] | None = None,
        loopback_only: bool = True,
        workdir: str | os.PathLike | None = None,
        startup_timeout: float = 20.0,
        env: Mapping[str, str] | None = None,
        listen_host: str | None = "127.0.0.1",
    ):
        """
        upstream:      the fake provider's URL, e.g. "http://127.0.0.1:9999".
        script:        addon script path, or None for bare mitmdump.
        budget_config: passed as --set budget_config=PATH (only when given).
        extra_hosts:   more hostnames (exact; or regexes if they start with "re:") to map.
        options:       extra --set options, e.g. {"budget_admin_port": 0}; list values
                       are passed as repeated --set k=v.
        loopback_only: answer 502 for any host that is neither mapped nor loopback.
        workdir:       where confdir and the log go (default: a fresh temp dir).
        env:           extra environment variables for the mitmdump process.
        listen_host:   the proxy's --listen-host; None leaves mitmproxy's default (every
                       interface), and clients then connect to 127.0.0.1.
        """
        self.upstream = upstream.rstrip("/")
        self.script = Path(script) if script is not None else None
        self.budget_config = Path(budget_config) if budget_config is not None else None
        self.extra_hosts = list(extra_hosts)
        self.options = dict(options or {})
        self.loopback_only = loopback_only
        self.startup_timeout = startup_timeout
        self.extra_env = dict(env or {})
        self.listen_host = listen_host
        self.host = listen_host or "127.0.0.1"  # where clients reach the proxy
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(
            tempfile.gettempdir()) / f"spendgate-mitm-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.confdir = self.workdir / "mitm-conf"
        self.log_path = self.workdir / "mitmdump.log"
        self.port: int | None = None
        self.admin_port: int | None = None  # spendgate's admin API, when the addon runs
        self.proc: subprocess.Popen | None = None
        self._log_fh = None
        self._clients: list[Any] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("proxy not started")
        return f"http://{self.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        if self.admin_port is None:
            raise RuntimeError("no admin API: started without the addon, or with budget_admin_port=0")
        return f"http://127.0.0.1:{self.admin_port}"

    def admin_client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        """A plain httpx client on the admin API (no proxy), with a bearer token if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.admin_url, headers=headers, trust_env=False, timeout=30, **kw)
        self._clients.append(client)
        return client

    @property
    def ca_path(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def host_regexes(self) -> list[str]:
        out = [f"(?:{PROVIDER_HOSTS_RE})"]
        for h in self.extra_hosts:
            out.append(h[3:] if h.startswith("re:") else re.escape(h))
        return out

    def command(self, port: int) -> list[str]:
        cmd = [
            _mitmdump_path(),
            *(["--listen-host", self.listen_host] if self.listen_host is not None else []),
            "--listen-port", str(port),
            "--set", f"confdir={self.confdir}",
            "--set", "upstream_cert=false",
            "--set", "connection_strategy=lazy",
        ]
        for rx in self.host_regexes():
            cmd += ["--map-remote", map_remote_spec(rx, self.upstream)]
        if self.loopback_only:
            # flowfilter's quoted strings treat "\\" as an escape char: double it.
            q = lambda rx: "'" + rx.replace("\\", "\\\\") + "'"  # noqa: E731
            allowed = " | ".join(f"~d {q('^' + rx + '$')}" for rx in self.host_regexes())
            allowed += f" | ~d {q(LOOPBACK_HOST_RE)}"
            # separator '#': the filter itself uses '|'. 502, empty body, from the proxy.
            cmd += ["--set", f"block_list=#!({allowed})#502"]
        if self.script is not None:
            cmd += ["-s", str(self.script)]
        if self.budget_config is not None:
            cmd += ["--set", f"budget_config={self.budget_config}"]
        if self.admin_port is not None:
            cmd += ["--set", f"budget_admin_port={self.admin_port}"]
        for k, v in self.options.items():
            values = v if isinstance(v, (list, tuple)) else [v]
            for item in values:
                cmd += ["--set", f"{k}={_opt_value(item)}"]
        return cmd

    def start(self) -> "MitmProxy":
        if self.proc is not None:
            raise RuntimeError("already started")
        self.confdir.mkdir(parents=True, exist_ok=True)
        if self.script is not None and not Path(self.script).exists():
            raise ProxyStartError(f"addon script {self.script} does not exist")
        last_err: Exception | None = None
        for _attempt in range(3):  # a free port can be taken between probe and bind
            port = free_port()
            try:
                self._spawn(port)
                self._wait_ready()
                return self
            except ProxyStartError as e:
                last_err = e
                in_use = "address already in use" in self.log_text().lower()
                self._terminate()
                if not in_use:
                    break
        raise last_err  # type: ignore[misc]

    def _spawn(self, port: int) -> None:
        self.port = port
        if self.script is not None and self.script.name == "budget.py" and "budget_admin_port" not in self.options:
            self.admin_port = free_port()
        env = os.environ.copy()
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                  "all_proxy"):
            env.pop(k, None)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        self._log_fh = open(self.log_path, "ab")
        cmd = self.command(port)
        self._log_fh.write(("$ " + " ".join(cmd) + "\n").encode())
        self._log_fh.flush()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            cwd=str(REPO_ROOT),
            env=env,
            start_new_session=True,  # a ^C in the terminal doesn't hit it twice
        )

    def _wait_ready(self) -> None:
        assert self.proc is not None and self.port is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProxyStartError(
                    f"mitmdump exited with {self.proc.returncode} during startup\n"
                    + self.log_tail()
                )
            if (self.ca_path.exists() and _port_open(self.host, self.port)
                    and (self.admin_port is None or _port_open("127.0.0.1", self.admin_port))):
                return
            time.sleep(0.05)
        raise ProxyStartError(
            f"mitmdump did not listen on {self.port} within {self.startup_timeout}s\n"
            + self.log_tail()
        )

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGINT, then SIGKILL after `timeout`. Returns the exit code."""
        for c in self._clients:
            with contextlib.suppress(Exception):
                c.close()
        self._clients.clear()
        rc = self._terminate(timeout)
        if self._own_workdir and os.environ.get("SPENDGATE_KEEP_PROXY_DIR") != "1":
            # keep the log around when the process did not exit cleanly
            if rc in (0, None, -signal.SIGINT, 130):
                shutil.rmtree(self.workdir, ignore_errors=True)
        return rc

    def _terminate(self, timeout: float = 5.0) -> int | None:
        proc, self.proc = self.proc, None
        rc = None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait(timeout=5)
            rc = proc.returncode
        if self._log_fh is not None:
            with contextlib.suppress(Exception):
                self._log_fh.close()
            self._log_fh = None
        return rc

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> "MitmProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort; never leave a mitmdump behind
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                proc.kill()

    # ------------------------------------------------------------------ logs

    def log_text(self) -> str:
        if self._log_fh is not None:
            with contextlib.suppress(Exception):
                self._log_fh.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_text().splitlines()[-lines:]
        return f"--- mitmdump log tail ({self.log_path}) ---\n" + "\n".join(text)

    # ------------------------------------------------------------------ clients

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a client subprocess: proxied through mitmdump, trusting its CA.
        NO_PROXY lists only loopback, so the provider hosts always go through the proxy
        while direct calls to 127.0.0.1 (fake control API, admin port) don't."""
        env = dict(os.environ if base is None else base)
        for k in list(env):
            if k.lower() in ("no_proxy", "all_proxy"):
                del env[k]
        for k in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            env[k] = self.url
        ca = str(self.ca_path)
        for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
            env[k] = ca
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
        return env

    def proxy_url(self, auth: tuple[str, str] | None = None) -> str:
        """The proxy URL, with USER:KEY credentials when given (proxy authentication)."""
        if auth is None:
            return self.url
        from urllib.parse import quote

        return f"http://{quote(auth[0], safe='')}:{quote(auth[1], safe='')}@{self.host}:{self.port}"

    def httpx2_client(self, proxy_auth: tuple[str, str] | None = None, **kwargs: Any):
        """An httpx2.Client through the proxy, trusting its CA (what the SDKs take)."""
        import httpx2

        kwargs.setdefault("timeout", 30.0)
        client = httpx2.Client(proxy=self.proxy_url(proxy_auth), verify=self.ssl_context(), trust_env=False,
                               **kwargs)
        self._clients.append(client)
        return client

    def httpx_client(self, **kwargs: Any):
        """A plain httpx.Client through the proxy, trusting its CA."""
        import httpx

        kwargs.setdefault("timeout", 30.0)
        client = httpx.Client(proxy=self.url, verify=self.ssl_context(), trust_env=False,
                              **kwargs)
        self._clients.append(client)
        return client

    def openai_client(self, api_key: str = "sk-test-openai", proxy_auth: tuple[str, str] | None = None,
                      **kwargs: Any):
        import openai

        kwargs.setdefault("base_url", "https://api.openai.com/v1")
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        client = openai.OpenAI(api_key=api_key, http_client=self.httpx2_client(proxy_auth), **kwargs)
        self._clients.append(client)
        return client

    def azure_openai_client(
        self, api_key: str = "azure-test-key", *,
        azure_endpoint: str = "https://fake-resource.openai.azure.com",
        api_version: str = "2024-10-21", **kwargs: Any,
    ):
        import openai

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        client = openai.AzureOpenAI(api_key=api_key, azure_endpoint=azure_endpoint,
                                    api_version=api_version, http_client=self.httpx2_client(),
                                    **kwargs)
        self._clients.append(client)
        return client

    def anthropic_client(self, api_key: str = "sk-ant-test", **kwargs: Any):
        import anthropic

        kwargs.setdefault("base_url", "https://api.anthropic.com")
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        client = anthropic.Anthropic(api_key=api_key, http_client=self.httpx2_client(), **kwargs)
        self._clients.append(client)
        return client

    def bedrock_client(self, *, access_key: str = "AKIAIOSFODNN7EXAMPLE",
                       secret_key: str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: str = "us-east-1",
                       session_token: str | None = None, attempts: int = 1, headers: Mapping[str, str] = {},
                       **config: Any):
        """A boto3 `bedrock-runtime` client that reaches the real host name through the proxy
        (no `endpoint_url`: the proxy maps the host to the fake), trusting its CA. `headers`
        are added to every request (the fake's x-fake-* controls), unsigned. `attempts`: boto3's
        total attempts per call (it retries a 429, a budget refusal included, by default)."""
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "bedrock-runtime", region_name=region, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, aws_session_token=session_token, verify=str(self.ca_path),
            config=Config(proxies={"https": self.url}, retries={"total_max_attempts": attempts, "mode": "standard"},
                          connect_timeout=10, read_timeout=30, **config),
        )

        def add_headers(request, **_):
            for k, v in headers.items():
                request.headers[k] = v

        if headers:
            client.meta.events.register("before-send.bedrock-runtime.*", add_headers)
        self._clients.append(client)
        return client

    def genai_client(self, *, headers: dict[str, str] | None = None, proxy_auth: tuple[str, str] | None = None,
                     **kwargs: Any):
        """A google-genai Client through the proxy: the Gemini API (`api_key=`), or Vertex AI
        (`vertexai=True` with `project`, `location` and `credentials`, or an express-mode
        `api_key`). It sends through httpx2; retries are off; `headers` go on every request."""
        from google import genai
        from google.genai import types

        options = types.HttpOptions(httpx_client=self.httpx2_client(proxy_auth), headers=headers,
                                    retry_options=types.HttpRetryOptions(attempts=1))
        return genai.Client(http_options=options, **kwargs)

    def anthropic_vertex_client(self, access_token: str = "ya29.test-vertex-token", *, region: str = "us-east5",
                                project_id: str = "fake-project", **kwargs: Any):
        """The anthropic SDK's Claude-on-Vertex client, with a static OAuth access token."""
        import anthropic

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        client = anthropic.AnthropicVertex(region=region, project_id=project_id, access_token=access_token,
                                           http_client=self.httpx2_client(), **kwargs)
        self._clients.append(client)
        return client

    def cohere_client(self, api_key: str = "co-test-key", **kwargs: Any):
        """cohere's ClientV2 (it sends through httpx, and retries a 429 unless told not to)."""
        import cohere

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        return cohere.ClientV2(api_key=api_key, httpx_client=self.httpx_client(), **kwargs)

    def groq_client(self, api_key: str = "gsk_test-groq-key", **kwargs: Any):
        """The groq SDK's client (it sends through httpx; retries are off)."""
        import groq

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        return groq.Groq(api_key=api_key, http_client=self.httpx_client(), **kwargs)

    def mistral_client(self, api_key: str = "mistral-test-key", **kwargs: Any):
        """The mistralai SDK's client (it sends through httpx)."""
        from mistralai.client import Mistral

        kwargs.setdefault("timeout_ms", 30_000)
        return Mistral(api_key=api_key, client=self.httpx_client(), **kwargs)

    def curl(self, *args: str, timeout: float = 30.0, text: bool = True,
             check: bool = False) -> subprocess.CompletedProcess:
        """curl -sS --proxy URL --cacert CA ARGS... (never inherits other proxy settings)."""
        env = self.env()
        cmd = ["curl", "-sS", "--noproxy", "", "--proxy", self.url, "--cacert",
               str(self.ca_path), *args]
        return subprocess.run(cmd, capture_output=True, text=text, timeout=timeout, env=env,
                              check=check)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
