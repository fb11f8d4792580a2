"""The ledger's writes in a process of their own (`general_settings.ledger_writer: process`).

With the writer thread, every settlement's SQLite work — its row, six index entries, the
scope updates, the commit — runs on mitmdump's core and under its GIL: ≈ 75 µs per call,
a quarter of what spendgate costs a call (docs/benchmarks.md). `ProcessRunner` is the
writer thread's runner for a child process that owns the writer's `Store` instead: the
writer thread still orders, batches and hands back every write (ledger/writer.py); it sends
each operation, or each batch of them, down a pipe and waits for the answer (the GIL is
free meanwhile), and the child runs it exactly as the thread would have — the same `Store`
code, one transaction per batch. Reads stay on the proxy's reader thread.

**What crosses the pipe.** An operation is `(op, args)` pickled (`op` a `Store` method or a
module function, named, never code). Settlements, the one write every call makes, cross in a
compact form (`_settlements_out`): the row's column values already made (`row_values`), the
holds and scopes as plain tuples; their results come back as tuples too. A settlement's
`then` hook (alerts enqueued in the settlement's own transaction) is code of the proxy's: the
child calls back up the pipe at that point of the transaction, the hook runs on the writer
thread with a `StoreInChild` whose `call(fn, *args)` runs `fn(store, *args)` down in the
child's open transaction, and the child carries on and commits — so the alert still commits
with its settlement, as with the thread.

**A kill loses nothing.** A child found dead before a write reaches it (killed between
writes) has run none of it: a new one is started and takes the write. A child dying under
a write (killed, out of memory) leaves its outcome unknown: the write fails with
`WriterGone`, which the ledger treats as an unreachable database — settlements go to the
spool and are replayed (idempotent by call uid) by the next child. A child is started at most
once every `RESPAWN_GAP` seconds. The proxy dying closes the pipe: the child finishes the
transaction it is in and exits; the proxy's call journal has every call that was not
committed (metering/journal.py).
"""

from __future__ import annotations

import copyreg
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

from .model import Reservation, ScopeRef, ScopeState, SpendChange
from .store import Settlement, Store
from .writer import LocalRunner, WriterGone

log = logging.getLogger("spendgate")

__all__ = ["ProcessRunner", "StoreInChild"]

RESPAWN_GAP = 1.0  # seconds between two attempts to start a new child after one died
_HEADER = struct.Struct(">I")
_BROKEN = (OSError, ValueError, EOFError, pickle.UnpicklingError)  # the pipe or the child is gone
_REPO_ROOT = Path(__file__).resolve().parent.parent
_CHILD_MAIN = "from ledger.writer_process import main; main()"


def _mapping(items: dict) -> MappingProxyType:
    return MappingProxyType(items)


# Frozen mappings (a record's usage units) cross as dicts made read-only again on arrival.
copyreg.pickle(MappingProxyType, lambda m: (_mapping, (dict(m),)))


# -- framing -------------------------------------------------------------------------------


def _dumps(message: Any) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _write(out: BinaryIO, data: bytes) -> None:
    out.write(_HEADER.pack(len(data)) + data)
    out.flush()


def _send(out: BinaryIO, message: Any) -> None:
    _write(out, _dumps(message))


def _receive(inp: BinaryIO) -> Any:
    """The next message, or None at the end of the pipe (the other side is gone)."""
    head = inp.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    data = inp.read(size)
    if len(data) < size:
        return None
    try:
        return pickle.loads(data)
    except Exception as e:  # whole, but not to be read here (a function this side can't import)
        return ("bad", e)


def _value(answer: tuple) -> Any:
    """The value of an ("ok", value) answer; an ("err" | "bad", exception) one raises it."""
    if answer[0] in ("err", "bad"):
        raise answer[1]
    return answer[1]


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives a pickle round trip, else a RuntimeError saying what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


# -- settlements in compact form -------------------------------------------------------------


class _Then:
    """Stands in the child for a settlement's `then` hook, which stays in the proxy: calling
    it asks the proxy to run hook `index` on the changes, inside this transaction."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __call__(self, store: Store, changes: list[SpendChange]) -> None:
        _child.then(self.index, changes)


class _Row:
    """A settlement's record as the child's `Store.settle_many` reads it: its row made."""

    __slots__ = ("uid", "cost_nanos", "key_hash", "key_masked", "finished_at", "values")

    def __init__(self, uid: str, cost_nanos: int | None, key_hash: str | None, key_masked: str | None,
                 finished_at: datetime, values: tuple):
        self.uid, self.cost_nanos, self.key_hash, self.key_masked = uid, cost_nanos, key_hash, key_masked
        self.finished_at, self.values = finished_at, values

    def row_values(self) -> tuple:
        return self.values


def _settlements_out(items: list[Settlement], thens: dict[int, Callable]) -> list[tuple]:
    out = []
    for it in items:
        record, res = it.record, it.reservation
        if record.finished_at is None:  # as settle_many does it, before the row is made
            record.finished_at = it.now
        then = None
        if it.then is not None:
            then = len(thens)
            thens[then] = it.then
        out.append((
            None if res is None else (res.id, res.amount_nanos, tuple((r.kind, r.id) for r in res.scopes)),
            tuple((r.kind, r.id) for r in it.refs),
            (record.uid, record.cost_nanos, record.key_hash, record.key_masked, record.finished_at,
             record.row_values()),
            it.now, then,
        ))
    return out


def _settlements_in(items: list[tuple]) -> list[Settlement]:
    out = []
    for res, refs, row, now, then in items:
        out.append(Settlement(
            None if res is None else Reservation(res[0], res[1], tuple(ScopeRef(*r) for r in res[2])),
            tuple(ScopeRef(*r) for r in refs), _Row(*row), now, None if then is None else _Then(then)))
    return out


def _changes_out(changes: list[SpendChange]) -> list[tuple]:
    return [(tuple(c.scope), c.before_nanos) for c in changes]


def _changes_in(changes: list[tuple]) -> list[SpendChange]:
    return [SpendChange(ScopeState._make(state), before) for state, before in changes]


def _results_out(results: list[tuple[int, list[SpendChange]]]) -> list[tuple]:
    return [(call_id, _changes_out(changes)) for call_id, changes in results]


def _results_in(results: list[tuple]) -> list[tuple[int, list[SpendChange]]]:
    return [(call_id, _changes_in(changes)) for call_id, changes in results]


def _job_out(op: Callable, args: tuple, thens: dict[int, Callable]) -> tuple:
    if op is Store.settle_many:
        return op, (_settlements_out(args[0], thens),)
    if op is Store.settle:  # one settlement: a batch of one, in the same compact form
        return Store.settle_many, (_settlements_out([Settlement(*args)], thens),)
    return op, args


def _job_in(op: Callable, args: tuple) -> tuple:
    if op is Store.settle_many:
        return (_settlements_in(args[0]),)
    return args


def _result_out(op: Callable, result: Any) -> Any:
    return _results_out(result) if op is Store.settle_many else result


def _result_in(op: Callable, result: Any) -> Any:
    if op is Store.settle:
        return _results_in(result)[0]
    return _results_in(result) if op is Store.settle_many else result


# -- the proxy's side ----------------------------------------------------------------------


class ProcessRunner:
    """The writer thread's runner for a child process holding the store (ledger/writer.py).
    Used from the writer thread only."""

    def __init__(self, make_store: Callable[[], Store], name: str = "spendgate-ledger-writer"):
        self.make_store = make_store  # picklable: the child calls it to make its store
        self.name = name
        self.starts = 0  # children started (more than one: a child died and was replaced)
        self._child: subprocess.Popen | None = None
        self._last_start = 0.0
        self._thens: dict[int, Callable] = {}
        self._start()

    @property
    def pid(self) -> int | None:
        """The child's process id (bench.py pins it; tests kill it)."""
        return self._child.pid if self._child is not None else None

    def one(self, op: Callable[..., Any], args: tuple) -> Any:
        self._thens = {}
        job = _job_out(op, args, self._thens)
        return _result_in(op, self._ask(("one", *job)))

    def many(self, jobs: list[tuple[Callable[..., Any], tuple]]) -> list[Any]:
        self._thens = {}
        out = [_job_out(op, args, self._thens) for op, args in jobs]
        return [_result_in(op, r) for (op, _), r in zip(jobs, self._ask(("many", out)))]

    def close(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        try:
            _send(child.stdin, ("close",))
            _receive(child.stdout)
        except _BROKEN:
            pass
        self._reap(child)

    # -- the pipe ----------------------------------------------------------------------------

    def _start(self) -> None:
        self._last_start = time.monotonic()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH")) if p)
        child = subprocess.Popen([sys.executable, "-c", _CHILD_MAIN], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, env=env, cwd=str(_REPO_ROOT))
        try:
            _send(child.stdin, ("open", self.make_store))
            answer = _receive(child.stdout)
        except _BROKEN:
            answer = None
        if answer is None or answer[0] != "ok":
            self._reap(child)
            if answer is not None and answer[0] == "err":
                raise answer[1]
            raise WriterGone("the ledger writer process did not start")
        self._child = child
        self.starts += 1

    def _ask(self, message: tuple) -> Any:
        data = _dumps(message)  # (what cannot be pickled fails here, as the caller's error)
        for _ in range(2):  # a child dead before taking the message ran none of it: a new one takes it
            child = self._running()
            try:
                _write(child.stdin, data)
                break
            except _BROKEN:
                self._lost(child)
        else:
            raise WriterGone("the ledger writer process died before taking a write")
        try:
            while (answer := _receive(child.stdout)) is not None and answer[0] == "then":
                self._run_then(child, answer[1], answer[2])  # a hook, inside the child's transaction
        except _BROKEN:
            answer = None
        if answer is None:  # it died under the write: its outcome is unknown
            self._lost(child)
            raise WriterGone(f"the ledger writer process died (exit status {child.returncode})")
        return _value(answer)

    def _running(self) -> subprocess.Popen:
        """The child, a new one if it has died since the last write (at most one start every
        RESPAWN_GAP seconds: a child that cannot start is not retried in a loop)."""
        if self._child is not None and self._child.poll() is not None:  # it died between writes
            self._lost(self._child)
        if self._child is None:
            if time.monotonic() - self._last_start < RESPAWN_GAP:
                raise WriterGone("the ledger writer process is down")
            self._start()
            log.warning("spendgate: ledger writer process restarted (pid %s)", self.pid)
        return self._child

    def _lost(self, child: subprocess.Popen) -> None:
        self._child = None
        self._reap(child)
        log.error("spendgate: the ledger writer process died (exit status %s); its writes are retried",
                  child.returncode)

    def _run_then(self, child: subprocess.Popen, index: int, changes: list) -> None:
        try:
            self._thens[index](StoreInChild(child), _changes_in(changes))
        except Exception as e:
            _send(child.stdin, ("raise", _portable(e)))
        else:
            _send(child.stdin, ("done",))

    @staticmethod
    def _reap(child: subprocess.Popen) -> None:
        for stream in (child.stdin, child.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class StoreInChild:
    """What a settlement's `then` hook gets in the proxy for the store: `call(fn, *args)`
    runs `fn(store, *args)` in the child, inside the settlement's open transaction."""

    def __init__(self, child: subprocess.Popen):
        self._child = child

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        _send(self._child.stdin, ("call", fn, args))
        answer = _receive(self._child.stdout)
        if answer is None:
            raise WriterGone("the ledger writer process died")
        return _value(answer)


# -- the child's side ----------------------------------------------------------------------


class _Child:
    """The child's loop: one message at a time from the proxy, answered in order."""

    def __init__(self, inp: BinaryIO, out: BinaryIO):
        self.inp, self.out = inp, out
        self.runner: LocalRunner | None = None  # the writer's store, run as the thread runs it

    def serve(self) -> None:
        while (message := _receive(self.inp)) is not None:
            kind = message[0]
            try:
                if kind == "open":
                    self.runner = LocalRunner(message[1]())
                    result: Any = os.getpid()
                elif kind == "one":
                    _, op, args = message
                    result = _result_out(op, self.runner.one(op, _job_in(op, args)))
                elif kind == "many":
                    jobs = [(op, _job_in(op, args)) for op, args in message[1]]
                    result = [_result_out(op, r) for (op, _), r in zip(jobs, self.runner.many(jobs))]
                elif kind == "bad":
                    raise message[1]
                elif kind == "close":
                    if self.runner is not None:
                        self.runner.close()
                    _send(self.out, ("ok", None))
                    return
                else:
                    raise ValueError(f"unknown message {kind!r}")
            except BaseException as e:
                _send(self.out, ("err", _portable(e)))
                continue
            _send(self.out, ("ok", result))

    def then(self, index: int, changes: list[SpendChange]) -> None:
        """Inside a transaction: the proxy runs hook `index`; its `call`s run here, now."""
        _send(self.out, ("then", index, _changes_out(changes)))
        while (message := _receive(self.inp)) is not None:
            kind = message[0]
            if kind == "done":
                return
            if kind == "raise":
                raise message[1]
            if kind == "bad":
                _send(self.out, ("err", _portable(message[1])))
            elif kind == "call":
                try:
                    value = self.runner.one(message[1], message[2])
                except BaseException as e:
                    _send(self.out, ("err", _portable(e)))
                else:
                    _send(self.out, ("ok", value))
        raise SystemExit(0)  # the proxy is gone: the transaction is not committed


_child: _Child


def main() -> None:
    """The child (`_CHILD_MAIN`): serve the proxy on stdin/stdout until it goes.
    Ctrl-C and SIGTERM are the proxy's to act on (it then closes the pipe, after its last
    writes): the child leaves when the pipe closes."""
    global _child
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the pipe
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    _child = _Child(sys.stdin.buffer, out)
    _child.serve()

