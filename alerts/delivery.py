"""Delivering the outbox: claim due deliveries under a lease, send, record, retry.

One background task per proxy process, on mitmproxy's event loop. It wakes at once when
this process queues an alert, and otherwise when the next delivery falls due or every
`poll` seconds (alerts queued by other processes sharing the ledger, expired leases).
Deliveries run as their own tasks, so a receiver that hangs holds up nothing but itself,
and none of this touches a proxied flow.

Retries: a failed attempt is retried after `base × 2^(attempt-1)` seconds, capped at `cap`
(defaults 1 s, 2 s, 4 s, … 5 min, then every 5 min), or later if the receiver answered with
Retry-After. A delivery is given up (`failed`) only once its alert is older than
`give_up_after` (default one day, ~290 attempts), so a receiver down for hours still gets
every alert when it comes back — also if the proxy restarted meanwhile.

Delivery is at-least-once at the wire: a process killed after the receiver accepted an
alert but before the ledger recorded it leaves the lease to expire and the alert is sent
again. Every request carries `X-Spendgate-Alert-Id` for receivers that want to dedupe that.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from alerts import channels, outbox
from alerts.events import TEST_ALERT, Alert
from alerts.outbox import Claimed
from alerts.subjects import Routes, subject
from ledger import ScopeRef

if TYPE_CHECKING:
    from metering.runtime import Runtime

log = logging.getLogger("spendgate.alerts")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 1.0
    cap: float = 300.0
    give_up_after: float = 86400.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        return min(self.cap, self.base * 2 ** min(max(attempts - 1, 0), 40))

    def next_attempt(self, attempts: int, now: datetime, raised_at: datetime,
                     retry_after: float | None = None) -> datetime | None:
        """When to try again, or None to give up (the alert is older than give_up_after)."""
        if (now - raised_at).total_seconds() >= self.give_up_after:
            return None
        wait = max(self.delay(attempts), min(retry_after or 0.0, self.cap))
        return now + timedelta(seconds=wait)


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll: float = 2.0  # seconds between outbox checks when nothing wakes the loop
    lease: float = 60.0  # seconds a claimed delivery is ours; must outlast `timeout`
    timeout: float = 10.0  # seconds per HTTP request / SMTP operation
    max_in_flight: int = 20


class AlertDelivery:
    """The delivery loop and its counters (for the metrics endpoint):

    deliveries_total[(channel, outcome)]  outcome: sent | failed (will retry) | gave_up | dropped
    test_deliveries_total[(channel, outcome)]  POST /alerts/test: sent | failed
    """

    def __init__(self, runtime: Callable[[], Runtime | None], settings: DeliverySettings | None = None,
                 clock: Callable[[], datetime] = utcnow, smtp_context: ssl.SSLContext | None = None):
        self.runtime = runtime
        self.settings = settings or DeliverySettings()
        self.clock = clock
        self.smtp_context = smtp_context
        self.owner = uuid.uuid4().hex  # lease holder id: this process
        self.routes = Routes()
        self.deliveries_total: Counter[tuple[str, str]] = Counter()
        self.test_deliveries_total: Counter[tuple[str, str]] = Counter()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._in_flight: set[asyncio.Task] = set()
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="spendgate-alerts")

    def wake(self) -> None:
        """Something was queued: look at the outbox now."""
        self._wake.set()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env=False: never through HTTPS_PROXY (which may be this proxy).
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        return self._client

    async def stop(self) -> None:
        """Let deliveries under way finish briefly, then hand what is left back to the
        outbox (due at once) for the next process."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=min(self.settings.timeout, 5.0))
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        rt = self.runtime()
        if rt is not None:
            try:
                released = await rt.ledger.write(outbox.release, self.owner, self.clock())
                if released:
                    log.info("spendgate: %d alert deliveries left for the next start", released)
            except Exception:
                log.exception("spendgate: could not release alert deliveries")
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- the loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = self.settings.poll
            rt = self.runtime()
            if rt is not None:
                try:
                    due_in = await self.drain(rt)
                    if due_in is not None:
                        delay = min(delay, max(due_in, 0.01))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("spendgate: alert outbox check failed")
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    async def drain(self, rt: Runtime) -> float | None:
        """Start every due delivery there is room for; seconds until the next is due."""
        lease = timedelta(seconds=max(self.settings.lease, 3 * self.settings.timeout))
        while True:
            due = await rt.ledger.read(outbox.next_due)
            now = self.clock()
            if due is None:
                return None
            if due > now:
                return (due - now).total_seconds()
            room = self.settings.max_in_flight - len(self._in_flight)
            if room <= 0:
                return None  # a finishing delivery wakes the loop
            claimed = await rt.ledger.write(outbox.claim, self.owner, now, lease, room)
            if not claimed:
                return 0.05  # another process took them between our read and our claim
            for c in claimed:
                task = asyncio.get_running_loop().create_task(self.deliver(rt, c))
                self._in_flight.add(task)
                task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    async def deliver(self, rt: Runtime, c: Claimed) -> None:
        """Send one claimed delivery and record the outcome (never raises)."""
        try:
            await self._deliver(rt, c)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("spendgate: alert delivery %d (%s) crashed; it is retried when its lease expires",
                          c.delivery_id, c.channel)

    async def _deliver(self, rt: Runtime, c: Claimed) -> None:
        a = c.alert
        config = rt.config
        routing = self.routes.routing(config, c.route_team)
        about = f"{a.event} for {a.scope} {a.subject.label}"
        if c.channel not in routing.alerting:
            reason = f"{c.channel} is no longer an alerting channel" + (
                f" for team {c.route_team}" if c.route_team else "")
            await rt.ledger.write(outbox.drop, c.delivery_id, self.owner, reason)
            self.deliveries_total[(c.channel, "dropped")] += 1
            log.info("spendgate: %s not sent: %s", about, reason)
            return
        where = channels.destination(c.channel, routing, config.litellm_settings) or "?"
        result = await channels.send(c.channel, a, c.alert_uid, routing, config.litellm_settings, self.client,
                                     self.settings.timeout, self.smtp_context)
        now = self.clock()
        if result.ok:
            await rt.ledger.write(outbox.succeed, c.delivery_id, self.owner, now)
            self.deliveries_total[(c.channel, "sent")] += 1
            log.info("spendgate: %s sent to %s (%s)", about, c.channel, where)
            return
        retry_at = self.settings.retry.next_attempt(c.attempts, now, c.created_at, result.retry_after)
        await rt.ledger.write(outbox.fail, c.delivery_id, self.owner, result.error or "failed", retry_at)
        outcome = "failed" if retry_at else "gave_up"
        self.deliveries_total[(c.channel, outcome)] += 1
        log.warning(
            "spendgate: %s could not be sent to %s (%s), attempt %d: %s; %s", about, c.channel, where,
            c.attempts, result.error,
            f"retrying at {retry_at:%Y-%m-%d %H:%M:%S} UTC" if retry_at else "giving up (alert older than "
            f"{self.settings.retry.give_up_after:.0f}s)",
        )

    # -- POST /alerts/test ----------------------------------------------------------------

    async def send_test(self, rt: Runtime, team_id: str | None = None) -> list[dict[str, Any]]:
        """Send a test alert through every configured channel now — the global settings'
        and each `default_team_settings` team's (or only `team_id`'s) — bypassing the
        outbox; one result per distinct destination."""
        settings = rt.config.litellm_settings
        teams = [team_id] if team_id is not None else [None, *(t.team_id for t in settings.default_team_settings)]
        jobs, seen = [], {}
        for team in teams:
            routing = self.routes.routing(rt.config, team)
            for channel in dict.fromkeys(routing.alerting):
                target = (channel, _raw_destination(channel, routing))
                if target in seen:
                    seen[target]["teams"].append(team)
                    continue
                report = {"channel": channel, "teams": [team],
                          "destination": channels.destination(channel, routing, settings)}
                seen[target] = report
                jobs.append((report, channel, routing, await self._test_alert(rt, team)))
        results = await asyncio.gather(*(
            channels.send(channel, alert, "test-" + uuid.uuid4().hex, routing, settings, self.client,
                          self.settings.timeout, self.smtp_context)
            for _, channel, routing, alert in jobs
        ))
        reports = []
        for (report, channel, _, _), result in zip(jobs, results):
            self.test_deliveries_total[(channel, "sent" if result.ok else "failed")] += 1
            if not result.ok:
                log.warning("spendgate: test alert to %s (%s) failed: %s", channel, report["destination"], result.error)
            report.update(ok=result.ok, status=result.status, error=result.error)
            reports.append(report)
        return reports

    async def _test_alert(self, rt: Runtime, team: str | None) -> Alert:
        ref = ScopeRef("team", team) if team else ScopeRef.global_()
        st = await rt.ledger.scope(ref)
        now = self.clock()
        who = subject(rt.directory, ref.kind, ref.id)
        if st is None:
            return Alert(TEST_ALERT, ref.kind, ref.id, "test", None, now, None, None, None, 0, now, who)
        return Alert(TEST_ALERT, st.kind, st.id, "test", None, st.period_start, st.reset_at, st.max_nanos,
                     st.soft_nanos, st.spend_nanos, now, who)


def _raw_destination(channel: str, routing) -> str:
    if channel == "slack":
        return channels.slack_url(routing) or ""
    if channel == "webhook":
        return channels.webhook_url(routing) or ""
    return ",".join(routing.email_alerts_to)

