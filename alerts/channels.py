"""Sending one alert through one channel: Slack and webhooks over HTTP, email over SMTP.

Destinations are read from the config at send time (never stored in the ledger), so a
Slack URL — which embeds a token — stays out of the database, and fixing a wrong URL in
the config fixes the retries of alerts already queued. Every error text that leaves this
module has the destination masked (`https://hooks.slack.com/…`).

HTTP goes through an `httpx.AsyncClient(trust_env=False)`: HTTPS_PROXY may point at this
very proxy, and alert traffic must not loop through it (or be metered by it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

import httpx

from alerts import render
from alerts.events import Alert
from config.schema import AlertRouting, LitellmSettings

CHANNELS = ("slack", "webhook", "email")

# httpx logs each request's full URL at INFO, and a webhook URL carries its token.
logging.getLogger("httpx").setLevel(logging.WARNING)
USER_AGENT = "spendgate-alerts/0.1"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's result. `error` is the receiver's answer (or the connection problem),
    with secrets masked; `retry_after` is the receiver's Retry-After in seconds, if any."""

    ok: bool
    error: str | None = None
    status: int | None = None
    retry_after: float | None = None


def mask_url(url: str) -> str:
    """Scheme and host only: webhook paths and queries carry tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "…"
    return f"{parts.scheme}://{host}{port}/…"


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with every secret (and its path part, which httpx may quote alone) masked."""
    for secret in secrets:
        if not secret:
            continue
        masked = mask_url(secret) if "://" in secret else "**********"
        text = text.replace(secret, masked)
        path = urlsplit(secret).path if "://" in secret else ""
        if len(path) > 1:
            text = text.replace(path, "/…")
    return text


def slack_url(routing: AlertRouting) -> str | None:
    url = routing.slack_webhook_url or routing.slack_alert_to_webhook_url
    return url.get_secret_value() if url else None


def webhook_url(routing: AlertRouting) -> str | None:
    return routing.webhook_url.get_secret_value() if routing.webhook_url else None


def destination(channel: str, routing: AlertRouting, settings: LitellmSettings) -> str | None:
    """Where `channel` sends under `routing`, masked for display; None when not configured."""
    if channel not in routing.alerting:
        return None
    if channel == "slack":
        url = slack_url(routing)
        return mask_url(url) if url else None
    if channel == "webhook":
        url = webhook_url(routing)
        return mask_url(url) if url else None
    if channel == "email" and routing.email_alerts_to:
        server = f"{settings.smtp_host}:{settings.smtp_port}" if settings.smtp_host else "no smtp_host"
        return f"{', '.join(routing.email_alerts_to)} via {server}"
    return None


# --- HTTP ------------------------------------------------------------------------------------


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


async def post_json(client: httpx.AsyncClient, url: str, body: dict, alert_uid: str, event: str,
                    timeout: float) -> Outcome:
    headers = {"User-Agent": USER_AGENT, "X-Spendgate-Alert-Id": alert_uid, "X-Spendgate-Event": event}
    try:
        response = await client.post(url, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        return Outcome(False, scrub(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__, url))
    if 200 <= response.status_code < 300:
        return Outcome(True, status=response.status_code)
    answer = " ".join(response.text[:300].split())
    return Outcome(False, scrub(f"HTTP {response.status_code}: {answer}" if answer else f"HTTP {response.status_code}",
                                url), response.status_code, _retry_after(response))


# --- SMTP ------------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def email_message(alert: Alert, sender: str, recipients: list[str], alert_uid: str) -> EmailMessage:
    """A plain-text part (the Slack text) and an HTML part with the same facts."""
    msg = EmailMessage()
    msg["Subject"] = render.email_subject(alert)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "spendgate.local")
    msg["X-Spendgate-Alert-Id"] = alert_uid
    msg.set_content(render.email_text(alert))
    msg.add_alternative(render.email_html(alert), subtype="html")
    return msg


def smtp_send(settings: LitellmSettings, msg: EmailMessage, recipients: list[str], timeout: float,
              context: ssl.SSLContext | None = None) -> None:
    """Send with stdlib smtplib (blocking: run it in a thread).

    Port 465 is implicit TLS. Port 587 always upgrades with STARTTLS and refuses to go on
    without it. Any other port upgrades when the server offers STARTTLS. A password is
    only sent over TLS (or to a server on loopback). `context` defaults to the system's
    trust store (SSL_CERT_FILE is honoured).
    """
    host, port = settings.smtp_host, settings.smtp_port
    if not host:
        raise smtplib.SMTPException("smtp_host is not set")
    context = context or ssl.create_default_context()
    if port == 465:
        conn: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        conn = smtplib.SMTP(host, port, timeout=timeout)
    with conn:
        conn.ehlo()
        tls = port == 465
        if not tls and conn.has_extn("starttls"):
            conn.starttls(context=context)
            conn.ehlo()
            tls = True
        elif not tls and port == 587:
            raise smtplib.SMTPNotSupportedError("the server on port 587 does not offer STARTTLS; not sending in clear")
        if settings.smtp_user:
            if not tls and not _is_loopback(host):
                raise smtplib.SMTPNotSupportedError(
                    "the server offers no TLS; not sending the SMTP password in clear")
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            conn.login(settings.smtp_user, password)
        refused = conn.send_message(msg, to_addrs=recipients)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)


def sender_address(settings: LitellmSettings) -> str:
    if settings.smtp_sender:
        return settings.smtp_sender
    if settings.smtp_user and "@" in settings.smtp_user:
        return settings.smtp_user
    return "spendgate@localhost"


async def send_email(settings: LitellmSettings, recipients: list[str], alert: Alert, alert_uid: str,
                     timeout: float, context: ssl.SSLContext | None = None) -> Outcome:
    msg = email_message(alert, sender_address(settings), recipients, alert_uid)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await asyncio.to_thread(smtp_send, settings, msg, recipients, timeout, context)
    except smtplib.SMTPResponseException as e:
        detail = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        return Outcome(False, scrub(f"SMTP {e.smtp_code}: {detail}", password), e.smtp_code)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as e:
        return Outcome(False, scrub(f"{type(e).__name__}: {e}", password))
    return Outcome(True)


# --- one channel -----------------------------------------------------------------------------


async def send(channel: str, alert: Alert, alert_uid: str, routing: AlertRouting, settings: LitellmSettings,
               client: httpx.AsyncClient, timeout: float, smtp_context: ssl.SSLContext | None = None) -> Outcome:
    """Render `alert` for `channel` and send it where `routing` says."""
    if channel == "slack":
        url = slack_url(routing)
        if url:
            return await post_json(client, url, render.slack(alert), alert_uid, alert.event, timeout)
    elif channel == "webhook":
        url = webhook_url(routing)
        if url:
            return await post_json(client, url, render.webhook(alert), alert_uid, alert.event, timeout)
    elif channel == "email":
        if routing.email_alerts_to:
            return await send_email(settings, list(routing.email_alerts_to), alert, alert_uid, timeout, smtp_context)
    return Outcome(False, f"channel {channel!r} has no destination configured")
