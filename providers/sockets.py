"""What a provider declares about a WebSocket API: how one socket's messages are cut into
metered turns.

A WebSocket endpoint (Responses API WebSocket mode, the Realtime API, Gemini Live) is a
`Route` whose `api` is a `SocketApi`: recognised on the upgrade request, never on a plain
HTTP call. Each open socket gets a `SocketSession`, the provider's reader of that
protocol: it says which client message starts a turn (and what its request is, for the
reservation), which turn each server message belongs to (by response id, lane, or order,
as the protocol allows), and when a turn has ended. It only reads: the transport adapter
(addon/websocket.py) forwards every frame unchanged and meters the turns.

Sessions never raise: a message they cannot read is passed over (and a turn's parser
keeps the problem, as an HTTP stream's does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from core import jsontext
from core.vocab import Transport
from providers.base import Api, CallRequest, Endpoint
from providers.parsing import JSON_ERRORS, UsageParser

__all__ = ["Refusals", "SocketApi", "SocketSession", "Turn", "load_message"]


@dataclass(eq=False)
class Turn:
    """One metered call on a socket: what the client asked for (`request`, the reservation's
    bound), the parser its server events go to, and where they come from.

    `hold` False: the turn is metered but holds nothing (a warm-up that generates nothing).
    `admitted` False: a turn the server started by itself (a transcription, a response
    its voice detection triggered): nothing could be checked before it, it is only settled.
    `api`: the operation it is priced as, when not the socket's own (a transcription).
    `standby` True: admitted ahead for a turn the server may start by itself (a response
    its voice detection triggers): it holds its bound from admission, is in flight once the
    session gives it a `response_id`, and is given back (`released`) if nothing starts it."""

    request: CallRequest
    parser: UsageParser
    lane: str = ""
    response_id: str | None = None
    hold: bool = True
    admitted: bool = True
    api: Api | None = None
    standby: bool = False
    ended: bool = False
    status: int | None = None  # an error status the provider gave the turn, if any
    meta: Any = None  # the transport adapter's (its MeteredCall)


class SocketSession:
    """One socket's protocol reader. Subclasses implement the hooks below."""

    #: The model the socket is opened for, when the handshake names it (Realtime's
    #: `?model=`): a key's model list is checked at the handshake then, else at each turn.
    model: str | None = None

    def client(self, data: bytes) -> Turn | None:
        """A client message: the turn it starts (not yet in flight), or None."""
        return None

    def begin(self, turn: Turn) -> None:
        """The turn was admitted and its message forwarded: its events are expected now."""

    def refused(self, turn: Turn) -> None:
        """The turn `client` returned was refused (or its client left): it never starts."""

    def released(self, turn: Turn) -> None:
        """A standby turn's hold was given back unused: nothing started it in time."""

    def drops(self, data: bytes) -> bool:
        """Whether a client message that starts no turn must not reach the server (audio
        that could start a response after its standby turn was refused)."""
        return False

    def server(self, data: bytes) -> list[Turn]:
        """A server message, fed to the turn(s) it belongs to: the turns it ended (a turn
        the server started by itself, not admitted, is returned once it ended)."""
        return []

    def open_turns(self) -> list[Turn]:
        """Turns in flight (begun, not ended): what a closing socket leaves unfinished."""
        return []

    def refusal_event(self, status: int, type_: str, message: str, client_data: bytes) -> bytes:
        """The provider's own error event for a turn spendgate refused (sent to the client
        instead of forwarding `client_data`)."""
        raise NotImplementedError


class SocketApi(Api):
    """A metered WebSocket protocol. `read_request` is not used: turns are read by the
    session from the socket's messages; the handshake carries no body."""

    transport: ClassVar[Transport] = Transport.WEBSOCKET

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        return CallRequest(model=endpoint.url_model, stream=True, max_output_tokens=0, input_bytes=0)

    def new_session(self, endpoint: Endpoint, path: str, default_max_output_tokens: int) -> SocketSession:
        """The reader of one socket opened at `path` (query included).
        `default_max_output_tokens`: a turn's output bound when nothing in the protocol gives one."""
        raise NotImplementedError


def load_message(data: bytes | str) -> dict[str, Any] | None:
    """A message as a JSON object, or None (not JSON, not an object)."""
    try:
        obj = jsontext.loads(data)
    except JSON_ERRORS:
        return None
    return obj if isinstance(obj, dict) else None


@dataclass
class Lanes:
    """Turns in flight, by lane in order of creation, and by response id once known."""

    by_lane: dict[str, list[Turn]] = field(default_factory=dict)
    by_id: dict[str, Turn] = field(default_factory=dict)

    def add(self, turn: Turn) -> None:
        self.by_lane.setdefault(turn.lane, []).append(turn)
        if turn.response_id:
            self.by_id[turn.response_id] = turn

    def find(self, lane: str, response_id: str | None) -> Turn | None:
        """The turn a server event belongs to: by its response id, else the lane's oldest
        turn without one (its `response.created` names it), else the lane's oldest."""
        if response_id:
            turn = self.by_id.get(response_id)
            if turn is not None:
                return turn
        queue = self.by_lane.get(lane) or []
        for turn in queue:
            if turn.response_id is None:
                if response_id:
                    turn.response_id = response_id
                    self.by_id[response_id] = turn
                return turn
        return queue[0] if queue and not response_id else None

    def end(self, turn: Turn) -> None:
        turn.ended = True
        queue = self.by_lane.get(turn.lane)
        if queue and turn in queue:
            queue.remove(turn)
            if not queue:
                del self.by_lane[turn.lane]
        if turn.response_id:
            self.by_id.pop(turn.response_id, None)

    def open(self) -> list[Turn]:
        return [turn for queue in self.by_lane.values() for turn in queue]


@dataclass
class Refusals:
    """Streamed media (audio appends, Live's realtime input) after a turn it started was
    refused: dropped for `RETRY_SECONDS`, so that a spent budget answers a stream with one
    error event (and one `blocked` row), not one per chunk; any other client message, or
    media after that time, asks again."""

    RETRY_SECONDS = 5.0
    since: float | None = None

    def refused(self) -> None:
        self.since = time.monotonic()

    def clear(self) -> None:
        self.since = None

    @property
    def blocked(self) -> bool:
        return self.since is not None and time.monotonic() - self.since < self.RETRY_SECONDS
