"""E-mail over SMTP (``smtplib``): ``[channels.NAME] host, port, sender`` (plus
``username``, ``password``, ``starttls``).

Each message is multipart/alternative (text and HTML) with ``Message-ID: <key@liucun>``
stable from the outbox key, and, when the payload carries ``unsubscribe_url``, the
``List-Unsubscribe`` and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` headers
(RFC 8058). SMTP does not deduplicate by Message-ID, so a message in doubt after a crash
is marked unknown rather than sent again.
"""

from __future__ import annotations

import html
import re
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from liucun.core import ChannelSettings, ConfigError
from liucun.journeys._channels.base import OutgoingMessage, SendResult, excerpt

_TAG = re.compile(r"<[^>]+>")


def message_id(key: str) -> str:
    """The stable Message-ID of outbox key ``key``: a dot-atom, so mail software reads
    it whole (a ``:`` is a special in RFC 5322 and Python's e-mail generator cut the
    header at the first one, leaving ``<j`` for every journey message); ``:`` becomes
    ``.``, other characters outside atext ``_``.

    >>> message_id("j:winback:12:mail:1")
    '<j.winback.12.mail.1@liucun>'
    """
    safe = re.sub(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]", "_", key.replace(":", "."))
    safe = re.sub(r"\.{2,}", ".", safe).strip(".") or "_"
    return f"<{safe}@liucun>"


class SmtpAdapter:
    """One SMTP connection per batch: opened at the first send, reused, closed by
    :meth:`close` (reopened after an error)."""

    def __init__(self, name: str, settings: ChannelSettings) -> None:
        missing = [f for f in ("host", "port", "sender") if getattr(settings, f) in (None, "")]
        if missing:
            raise ConfigError(
                f"[channels.{name}] lacks {', '.join(missing)}; an SMTP channel needs host, "
                'port and sender, e.g. host = "smtp.shop.cn", port = 587, '
                'sender = "Shop <news@shop.cn>"'
            )
        self.name = name
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The e-mail for ``message`` (address, subject, text and HTML bodies, headers)."""
        p = message.payload
        mail = EmailMessage()
        mail["Message-ID"] = message_id(message.key)
        mail["From"] = str(self.settings.sender)
        mail["To"] = str(message.address)
        mail["Subject"] = str(p.get("subject") or "")
        mail["Date"] = formatdate(message.now.timestamp(), usegmt=True)
        unsubscribe = p.get("unsubscribe_url")
        if unsubscribe:
            mail["List-Unsubscribe"] = f"<{unsubscribe}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text, markup = _bodies(p)
        mail.set_content(text)
        mail.add_alternative(markup, subtype="html")
        return mail

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        smtp = smtplib.SMTP(str(s.host), int(s.port or 25), timeout=s.timeout_s)
        try:
            if s.starttls:
                smtp.starttls()
            if s.username:
                smtp.login(s.username, s.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: OutgoingMessage) -> SendResult:
        if not message.address:
            return SendResult("failed", answer="no e-mail address")
        mail = self.build(message)
        s = self.settings
        try:
            refused = self._deliver(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return _answer(min(codes) if codes else 550, "recipient refused")
        except smtplib.SMTPResponseException as exc:
            self._drop()
            return _answer(exc.smtp_code, _decode(exc.smtp_error))
        except TimeoutError:
            self._drop()
            return SendResult("retry", answer=f"SMTP timed out after {s.timeout_s}s")
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return SendResult("retry", answer=excerpt(f"SMTP connection failed: {exc!r}"))
        if refused:
            codes = [code for code, _ in refused.values()]
            return _answer(min(codes), "recipient refused")
        return SendResult("ok", provider_message_id=mail["Message-ID"], answer="250 accepted")

    def _deliver(self, mail: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Send on the open connection (one per batch); a connection the server closed
        meanwhile is reopened once, before anything of this message was accepted."""
        if self._smtp is not None:
            try:
                return self._smtp.send_message(mail)
            except smtplib.SMTPServerDisconnected:
                self._drop()
        self._smtp = self._connect()
        return self._smtp.send_message(mail)

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            finally:
                self._smtp = None


def _answer(code: int, text: str) -> SendResult:
    """4xx: try again later; 5xx: permanent."""
    answer = excerpt(f"SMTP {code}: {text}")
    return SendResult("retry" if 400 <= code < 500 else "failed", answer=answer)


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _bodies(payload: dict[str, object]) -> tuple[str, str]:
    """Text and HTML from the payload's ``text``/``html``/``body``: a body that looks
    like HTML gives the HTML part (the text part is it without tags); plain text gives
    the text part (the HTML part is it escaped, line breaks kept)."""
    body = str(payload.get("body") or "")
    markup = payload.get("html")
    text = payload.get("text")
    looks_html = bool(re.search(r"<(p|div|a|br|html|table|span|b|strong)\b", body, re.I))
    if markup is None:
        markup = body if looks_html else "<p>" + html.escape(body).replace("\n", "<br>\n") + "</p>"
    if text is None:
        text = html.unescape(_TAG.sub("", body)) if looks_html else body
    return str(text), str(markup)
