"""What a provider module declares, and what recognising a request hands to metering.

A provider is mostly data (`Provider`): its name, the genai-prices provider whose prices
apply, the hosts it answers for, its routes (method + path template → the `Api` that
meters it, or free), and where its API key lives (`Credential`). An `Api` is one
operation of a wire format — OpenAI chat, Anthropic messages, Gemini generateContent —
and knows how to read its request (`read_request`) and its usage (`new_parser`). Several
providers share an `Api`: Groq, Mistral and Azure speak OpenAI chat; Vertex speaks Gemini
and Anthropic.

`providers/registry.py` lists the built-in providers; recognition, the `--allow-hosts`
pattern, the config schema's provider names, docs/providers.md and the tests' provider
tables are derived from that list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import unquote

from core import jsontext
from core.auth import bearer_token
from core.usage import TokenUsage
from core.vocab import EndpointKind, Framing, Transport
from providers.parsing import UsageParser

if TYPE_CHECKING:
    from mitmproxy import http

__all__ = [
    "FREE",
    "Free",
    "Api",
    "CallRequest",
    "Credential",
    "Endpoint",
    "KeyPlace",
    "Provider",
    "Route",
    "SigV4",
    "UNMETERED",
    "strip_path",
]


_NO_UNITS: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CallRequest:
    """What the request body says about the call, read before forwarding."""

    model: str | None
    stream: bool
    max_output_tokens: int | None  # max_tokens / max_completion_tokens / maxOutputTokens, if set
    input_bytes: int  # size of the request body: an upper bound on input tokens
    stream_usage_requested: bool = False  # OpenAI stream_options.include_usage already set by the client
    parse_error: str | None = None  # why the body could not be read (the call is still metered)
    #: Input tokens counted from the request itself (an upper bound), for an API whose
    #: answers may carry no usage (Gemini API embeddings): what such a call is charged,
    #: flagged estimated, when its answer reports none.
    input_tokens_estimate: int | None = None
    service_tier: str | None = None  # the tier the request asks for (OpenAI `service_tier`), if any
    #: Billing units the request alone fixes (tts-1's input characters, dall-e's images by
    #: size and quality): added to whatever the response reports.
    units: Mapping[str, int] = field(default=_NO_UNITS)
    #: The most the call can be billed for, where the request bounds it by something other
    #: than a max-tokens cap (images by size and quality, audio by the upload's size): the
    #: reservation prices this instead of the token bounds.
    max_usage: TokenUsage | None = None
    #: What to charge when a whole response reports no usage (a binary speech reply, a
    #: plain-text transcript): estimated from the request, and recorded as estimated.
    expected_usage: TokenUsage | None = None


class Api:
    """One metered operation of a wire format. Subclasses are stateless singletons.

    `read_request` never raises: a body it cannot read gives a `CallRequest` with
    `parse_error` set, and the call is still metered (estimated). `content_type` is the
    request's (multipart uploads need its boundary); JSON APIs ignore it.
    """

    kind: ClassVar[EndpointKind]
    #: What the ledger gets from it, for docs/providers.md.
    meters: ClassVar[str] = "input, cached and output tokens"
    #: How its calls travel: a WebSocket API (providers/sockets.py) is recognised on an
    #: upgrade request only, and each turn on the socket is a call.
    transport: ClassVar[Transport] = Transport.HTTP

    def wants_stream_usage(self, request: CallRequest) -> bool:
        """Whether spendgate must ask for this call's stream usage on the client's behalf
        (OpenAI chat reports it only with `stream_options.include_usage`; spendgate asks
        and hides the extra event from the client)."""
        return False

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        raise NotImplementedError

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}>"


class UnmeteredApi(Api):
    """A request to a provider's host that no route names and that is not a read: spendgate
    can't price it, so it is recorded as `unmetered` (never invisible) or refused, as
    `general_settings.unmetered_endpoints` says. The model is read if the body names one."""

    kind = EndpointKind.UNMETERED
    meters = "nothing: recorded as unmetered"

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        model = None
        if body[:1] == b"{":  # a JSON body may name it; multipart uploads and the like don't
            try:
                model = jsontext.loads(body).get("model")
            except (ValueError, UnicodeDecodeError, RecursionError, AttributeError):
                pass
        return CallRequest(model=model if isinstance(model, str) and model else None, stream=False,
                           max_output_tokens=None, input_bytes=len(body))

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return UsageParser()


UNMETERED = UnmeteredApi()


class KeyPlace:
    """A place in a request where an API key can be: a header, or a query parameter.

    A virtual key's real replacement is put in a place from the provider's config entry
    (`providers.<name>.…`): the fields in `needs`, all set, and those in `optional` if set.
    """

    __slots__ = ("name", "query", "bearer")
    needs: ClassVar[tuple[str, ...]] = ("api_key",)
    optional: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, *, query: bool = False, bearer: bool = False) -> None:
        self.name, self.query, self.bearer = name, query, bearer

    def read(self, request: http.Request, headers: Mapping[str, str] | None = None) -> str | None:
        """The key in `request` here; `headers`: its headers by lower-case name, if the caller
        has them so (a lookup in mitmproxy's multidict walks every header)."""
        if self.query:
            return request.query.get(self.name) or None
        value = (request.headers if headers is None else headers).get(self.name)
        if self.bearer:
            return bearer_token(value)
        return value.strip() or None if value else None

    def remove(self, request: http.Request) -> None:
        if self.query:
            if self.name in request.query:
                del request.query[self.name]
        elif self.name in request.headers:
            del request.headers[self.name]

    def put(self, request: http.Request, secrets: Mapping[str, str]) -> None:
        """Put the real credential (`secrets`: config field → value, `needs` all there) in."""
        key = secrets["api_key"]
        if self.query:
            request.query[self.name] = key
        else:
            request.headers[self.name] = f"Bearer {key}" if self.bearer else key

    def prepare(self) -> None:
        """Load what `put` needs before the first call (at start-up, not on the event loop)."""

    @property
    def label(self) -> str:
        """How docs/providers.md names this place (where a key is read)."""
        return self.put_label + (" (Bearer)" if self.bearer else "")

    @property
    def put_label(self) -> str:
        """How docs/providers.md names this place (where a real key is put)."""
        return f"`?{self.name}=`" if self.query else f"`{self.name}`"

    def __repr__(self) -> str:
        return f"KeyPlace({'?' if self.query else ''}{self.name})"


class SigV4(KeyPlace):
    """An AWS Signature Version 4 `Authorization` header: the key is the access key id in
    `Credential=AKIA…/<date>/<region>/<service>/aws4_request`, the same on every call (the
    signature after it changes with each request, so it never identifies anyone).

    Putting a real credential in re-signs the request with botocore's signer: the access
    key id, secret and (optional) session token from the config, the region from the host
    (AWS regional hosts are `<service>.<region>.<domain>`), `service` as AWS signs it. It
    signs `host`, `content-type` and the `x-amz-*`/`x-amzn-*` headers only, over the body as
    it is on the wire: headers the proxy or mitmproxy may still touch stay unsigned.
    """

    __slots__ = ("service",)
    needs = ("aws_access_key_id", "aws_secret_access_key")
    optional = ("aws_session_token",)
    #: The headers a signature covers, besides host: their values never change after signing.
    SIGNED_PREFIXES = ("x-amz-", "x-amzn-")

    def __init__(self, service: str = "") -> None:
        super().__init__("authorization")
        self.service = service

    def read(self, request: http.Request, headers: Mapping[str, str] | None = None) -> str | None:
        return sigv4_access_key((request.headers if headers is None else headers).get("authorization"))

    def remove(self, request: http.Request) -> None:
        for name in ("authorization", "x-amz-date", "x-amz-security-token"):
            if name in request.headers:
                del request.headers[name]

    def put(self, request: http.Request, secrets: Mapping[str, str]) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        host = request.pretty_host
        signed = AWSRequest(
            method=request.method,
            url=f"https://{host}{request.path}",  # as on the wire: botocore encodes it once more, as AWS does
            data=request.raw_content or b"",
            headers={k: v for k, v in request.headers.items()
                     if k.lower() == "content-type" or k.lower().startswith(self.SIGNED_PREFIXES)},
        )
        creds = Credentials(secrets["aws_access_key_id"], secrets["aws_secret_access_key"],
                            secrets.get("aws_session_token") or None)
        SigV4Auth(creds, self.service, host.split(".")[1]).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name.lower()] = signed.headers[name]

    def prepare(self) -> None:
        import botocore.auth  # noqa: F401  (a few hundred ms: at start-up, not on the first call)

    @property
    def label(self) -> str:
        return "`authorization` (SigV4: the access key id in `Credential=`)"

    @property
    def put_label(self) -> str:
        return "`authorization`, re-signed (SigV4)"

    def __repr__(self) -> str:
        return f"SigV4({self.service})"


class AuthScheme(KeyPlace):
    """`Authorization: <scheme> <token>` for a scheme other than Bearer: Gemini Live's
    ephemeral tokens (`Token auth_tokens/…`, what google-genai sends for such a key)."""

    __slots__ = ("scheme",)

    def __init__(self, scheme: str) -> None:
        super().__init__("authorization")
        self.scheme = scheme

    def read(self, request: http.Request, headers: Mapping[str, str] | None = None) -> str | None:
        value = (request.headers if headers is None else headers).get("authorization")
        head, _, token = (value or "").strip().partition(" ")
        return token.strip() or None if head.lower() == self.scheme.lower() else None

    def put(self, request: http.Request, secrets: Mapping[str, str]) -> None:
        request.headers["authorization"] = f"{self.scheme} {secrets['api_key']}"

    @property
    def label(self) -> str:
        return f"`authorization` ({self.scheme})"

    def __repr__(self) -> str:
        return f"AuthScheme({self.scheme})"


def sigv4_access_key(authorization: str | None) -> str | None:
    """The access key id of an `AWS4-HMAC-SHA256 Credential=AKID/scope…` header value, or None."""
    if not authorization or not authorization.startswith("AWS4-HMAC-SHA256 "):
        return None
    i = authorization.find("Credential=")
    if i < 0:
        return None
    key = authorization[i + 11:].split("/", 1)[0].strip()
    return key if key and "," not in key else None


KeyPlace.BEARER = KeyPlace("authorization", bearer=True)  # type: ignore[attr-defined]
KeyPlace.X_API_KEY = KeyPlace("x-api-key")  # type: ignore[attr-defined]
KeyPlace.API_KEY = KeyPlace("api-key")  # type: ignore[attr-defined]
KeyPlace.GOOG_API_KEY = KeyPlace("x-goog-api-key")  # type: ignore[attr-defined]
KeyPlace.QUERY_KEY = KeyPlace("key", query=True)  # type: ignore[attr-defined]
KeyPlace.SIGV4 = SigV4()  # type: ignore[attr-defined]  (reads and removes; a provider's own signs)
KeyPlace.TOKEN = AuthScheme("Token")  # type: ignore[attr-defined]  (Gemini Live's ephemeral tokens)
#: Every place any provider reads a key from: a virtual key is removed from all of them
#: before the real one is put in, so it can never reach upstream by a second header.
KeyPlace.ALL = (KeyPlace.BEARER, KeyPlace.X_API_KEY, KeyPlace.API_KEY,  # type: ignore[attr-defined]
                KeyPlace.GOOG_API_KEY, KeyPlace.QUERY_KEY, KeyPlace.SIGV4, KeyPlace.TOKEN)


@dataclass(frozen=True, slots=True)
class Credential:
    """Where a provider reads its API key: `reads`, in the order it looks; a virtual key's
    real replacement goes to `place`, or to the first of `also` whose config fields are set
    when `place`'s are not (Bedrock: SigV4 keys, else a Bedrock API key). `no_virtual_keys`
    says why a virtual key can't be swapped for a configured credential there (Claude on
    Vertex AI takes only short-lived OAuth tokens): such a call is refused with that message."""

    reads: tuple[KeyPlace, ...]
    place: KeyPlace
    also: tuple[KeyPlace, ...] = ()
    no_virtual_keys: str = ""

    @property
    def puts(self) -> tuple[KeyPlace, ...]:
        return (self.place, *self.also)

    def find(self, request: http.Request, headers: Mapping[str, str] | None = None) -> tuple[str, KeyPlace] | None:
        """(raw key, where it was), the first the provider would read; None without one."""
        for where in self.reads:
            value = where.read(request, headers)
            if value:
                return value, where
        return None

    def placement(self, secrets: Mapping[str, str]) -> KeyPlace | None:
        """Where `secrets` (config field → value) can be put; None if they are not enough."""
        for where in self.puts:
            if all(secrets.get(name) for name in where.needs):
                return where
        return None

    def swap(self, request: http.Request, secrets: Mapping[str, str]) -> None:
        """Take every key out of the request and put the real one where the provider reads it."""
        where = self.placement(secrets)
        if where is None:
            raise ValueError("no real credential to put in")  # identify() checks first
        for place in KeyPlace.ALL:  # type: ignore[attr-defined]
            place.remove(request)
        where.put(request, secrets)


BEARER = Credential((KeyPlace.BEARER,), KeyPlace.BEARER)  # type: ignore[attr-defined]


class Free:
    """The route of a call that costs nothing (a read, a token count, a moderation)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FREE"


FREE = Free()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A recognised, metered request: which provider, which operation, and what the URL
    itself says (the model, for Gemini, Azure deployments, Bedrock; whether it streams)."""

    provider: str  # the provider's name (the ledger's `provider` column)
    api: Api
    price_provider: str | None  # genai-prices provider id (None: only `pricing:` prices it)
    credential: Credential = BEARER
    url_model: str | None = None
    url_streaming: bool = False  # the URL itself asks for a stream (Gemini streamGenerateContent)
    framing: Framing = Framing.SSE  # of a streamed response

    @property
    def kind(self) -> EndpointKind:
        return self.api.kind


# --- routes ---------------------------------------------------------------------------

_PARAM = re.compile(r"\{(\w+)\}")
#: Methods that only read (or delete what was stored): never billed by any provider.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


@dataclass(frozen=True)
class Route:
    """`method template` → the `Api` that meters it, or `FREE`.

    A template is a path with `{name}` segments (`/openai/deployments/{model}/chat/completions`,
    `/v1beta/models/{model}:generateContent`); `{model}` becomes the endpoint's `url_model`
    (percent-decoded: Bedrock's model ids arrive as `…-v1%3A0`). A `:` in a template also
    matches `%3A`, which some clients send. `choices` limits a segment's values.
    """

    template: str
    api: Api | Free
    method: str = "POST"
    stream: bool = False  # the URL asks for a stream
    framing: Framing = Framing.SSE
    sse_query: bool = False  # framed as SSE only with `?alt=sse`, else a JSON array (Gemini)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    price_provider: str | None = None  # instead of the provider's
    credential: Credential | None = None  # instead of the provider's (Claude on Vertex AI)
    model_prefix: str = ""  # put before the URL's model (`tunedModels/`)
    note: str = ""  # for docs/providers.md

    @property
    def literal(self) -> bool:
        return "{" not in self.template

    def pattern(self) -> re.Pattern[str]:
        out, pos = [], 0
        for m in _PARAM.finditer(self.template):
            out.append(_literal(self.template[pos:m.start()]))
            name = m.group(1)
            allowed = self.choices.get(name)
            body = "|".join(map(re.escape, allowed)) if allowed else "[^/]+?"
            out.append(f"(?P<{name}>{body})")
            pos = m.end()
        out.append(_literal(self.template[pos:]))
        return re.compile("".join(out) + r"\Z")


def _literal(text: str) -> str:
    return re.escape(text).replace(":", "(?::|%3[aA])")


_SLASHES = re.compile("/{2,}")


def strip_path(path: str) -> str:
    """The path without query or fragment, runs of slashes as one (google-genai's live
    client opens `//ws/…`: its base URL ends in a slash, and Google serves it), and
    without a trailing slash."""
    for sep in ("?", "#"):
        i = path.find(sep)
        if i >= 0:
            path = path[:i]
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def query_has(path: str, pair: str) -> bool:
    """Whether the query string of `path` contains `pair` (`alt=sse`) as one of its items."""
    i = path.find("?")
    if i < 0:
        return False
    q = path[i + 1:].partition("#")[0]
    return any(kv.strip() == pair for kv in q.split("&"))


# --- providers ------------------------------------------------------------------------


class Provider:
    """A built-in or configured LLM API: what recognition needs to know about it.

    `hosts` are exact names; `host_suffixes` match a family of hosts (`.openai.azure.com`
    for every Azure resource); `host_families` are (prefix, suffix) pairs around one DNS
    label (`bedrock-runtime.` + a region + `.amazonaws.com`). Routes are tried exactly first (a dict), then as templates.
    A request on the provider's host that no route names is *unmetered* for a write
    (`route` returns None) and free for a read.
    """

    def __init__(
        self,
        name: str,
        *,
        price_provider: str | None,
        routes: tuple[Route, ...],
        hosts: tuple[str, ...] = (),
        host_suffixes: tuple[str, ...] = (),
        host_families: tuple[tuple[str, str], ...] = (),
        host_pattern: str | None = None,
        credential: Credential = BEARER,
        config_names: tuple[str, ...] = (),
        title: str | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.price_provider = price_provider
        self.routes = routes
        self.hosts = tuple(h.lower() for h in hosts)
        self.host_suffixes = tuple(s.lower() for s in host_suffixes)
        self.host_families = tuple((p.lower(), s.lower()) for p, s in host_families)
        #: the hosts as one regex, for `--allow-hosts` (derived from hosts, suffixes and families unless given)
        self.host_pattern = host_pattern or _hosts_regex(self.hosts, self.host_suffixes, self.host_families)
        self.credential = credential
        #: names under `providers:` in the config that set this provider's options
        self.config_names = config_names or (name,)
        self.title = title or name
        #: what a user of this provider must know beyond its routes, for docs/providers.md
        self.notes = notes
        self._exact: dict[tuple[str, str], Endpoint | Free] = {}
        self._templated: list[tuple[re.Pattern[str], Route]] = []
        self._sockets: list[tuple[re.Pattern[str], Route]] = []  # WebSocket endpoints: upgrades only
        for route in routes:
            if route.api is not FREE and route.api.transport is Transport.WEBSOCKET:
                self._sockets.append((route.pattern(), route))
            elif route.literal:
                self._exact[(route.method, route.template)] = self._endpoint(route, None)
            else:
                self._templated.append((route.pattern(), route))

    def _endpoint(self, route: Route, model: str | None, path: str = "") -> Endpoint | Free:
        if route.api is FREE:
            return FREE
        framing = route.framing
        if route.sse_query:
            framing = Framing.SSE if query_has(path, "alt=sse") else Framing.JSON_ARRAY
        return Endpoint(
            provider=self.name,
            api=route.api,  # type: ignore[arg-type]
            price_provider=route.price_provider or self.price_provider,
            credential=route.credential or self.credential,
            url_model=model,
            url_streaming=route.stream,
            framing=framing,
        )

    def unmetered(self) -> Endpoint:
        """The endpoint of a request no route names (`route` said None): recorded as unmetered."""
        return Endpoint(self.name, UNMETERED, self.price_provider, self.credential)

    def route(self, method: str, path: str) -> Endpoint | Free | None:
        """The endpoint `method path` calls: metered (an `Endpoint`), `FREE`, or None
        (a write no route names: unmetered)."""
        p = strip_path(path)
        hit = self._exact.get((method, p))
        if hit is not None:
            return hit
        for pattern, route in self._templated:
            if route.method != method:
                continue
            m = pattern.match(p)
            if m is not None:
                model = m.groupdict().get("model")
                if model:
                    model = route.model_prefix + self.url_model(unquote(model))
                return self._endpoint(route, model, path)
        if method in READ_METHODS:
            return FREE
        return None

    def socket_route(self, path: str) -> Endpoint | None:
        """The WebSocket endpoint an upgrade request to `path` opens, or None (not one
        spendgate meters: the socket is recorded as unmetered)."""
        p = strip_path(path)
        for pattern, route in self._sockets:
            m = pattern.match(p)
            if m is not None:
                model = m.groupdict().get("model")
                return self._endpoint(route, route.model_prefix + self.url_model(unquote(model)) if model else None)
        return None

    def url_model(self, model: str) -> str:
        """The model named in a URL, as pricing should see it (a provider may normalise it)."""
        return model

    def __repr__(self) -> str:
        return f"<Provider {self.name}>"


def _hosts_regex(hosts: tuple[str, ...], suffixes: tuple[str, ...],
                 families: tuple[tuple[str, str], ...] = ()) -> str:
    parts = [re.escape(h) for h in hosts]
    parts += ["[a-z0-9-]+" + re.escape(s) for s in suffixes]
    parts += [re.escape(p) + "[a-z0-9-]+" + re.escape(s) for p, s in families]
    return "|".join(parts)
