"""The one seam through which every favsync email leaves."""
from __future__ import annotations

import logging
import smtplib

from flask import Flask, render_template
from flask_mail import Connection, Mail, Message

from .config import ConfigError, Settings
from .errors import mail_unavailable

log = logging.getLogger("favsync.mail")


class TimeoutConnection(Connection):
    """Flask-Mail's SMTP connection, with the timeout it lacks."""

    def __init__(self, mail, timeout: int) -> None:
        super().__init__(mail)
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP:
        smtp_class = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = smtp_class(self.mail.server, self.mail.port, timeout=self.timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


class Mailer:
    """Sends favsync's emails by SMTP, or writes them to the log in development."""

    def __init__(self, state, sender: str, timeout: int) -> None:
        self._state = state  # Flask-Mail's per-app state; None writes emails to the log
        self.sender = sender
        self.timeout = timeout

    @classmethod
    def for_app(cls, app: Flask, settings: Settings) -> Mailer:
        """Use FAVSYNC_MAIL_* if set, else the host's Flask-Mail, else (debug only) the log."""
        if settings.mail_server is not None:
            state = Mail().init_mail(
                {
                    "MAIL_SERVER": settings.mail_server,
                    "MAIL_PORT": settings.mail_port,
                    "MAIL_USE_TLS": settings.mail_use_tls,
                    "MAIL_USE_SSL": settings.mail_use_ssl,
                    "MAIL_USERNAME": settings.mail_username,
                    "MAIL_PASSWORD": settings.mail_password,
                    "MAIL_DEFAULT_SENDER": settings.mail_default_sender,
                    "MAIL_SUPPRESS_SEND": False,
                }
            )
            # Flask-Mail's Message reads app.extensions["mail"]; never replace a host's.
            app.extensions.setdefault("mail", state)
        elif "mail" in app.extensions:
            state = app.extensions["mail"]
        elif app.debug or app.testing:
            state = None
        else:
            raise ConfigError(
                "FAVSYNC_MAIL_SERVER is not set: outside debug and testing favsync sends "
                "magic links by SMTP and will not write them to the log"
            )
        sender = settings.mail_default_sender or getattr(state, "default_sender", None)
        return cls(state, sender or "no-reply@localhost", settings.mail_timeout)

    def send_magic_link(
        self, *, to: str, brokerage: str, url: str, code: str, minutes: int
    ) -> None:
        """Email a sign-in link and code; raise a 503 ApiError if SMTP will not take it."""
        context = {"brokerage": brokerage, "url": url, "code": code, "minutes": minutes}
        message = Message(
            subject=f"Your sign-in link for {brokerage}",
            recipients=[to],
            sender=self.sender,
            body=render_template("favsync/email/magic_link.txt", **context),
            html=render_template("favsync/email/magic_link.html", **context),
        )
        self._send(message)

    def _send(self, message: Message) -> None:
        if self._state is None:
            log.warning("No mail server configured (FAVSYNC_MAIL_SERVER); the email to %s:\n%s",
                        ", ".join(message.recipients), message.body)
            return
        try:
            with TimeoutConnection(self._state, self.timeout) as connection:
                connection.send(message)
        except (smtplib.SMTPException, OSError) as exc:
            log.error("could not send email: %s", exc.__class__.__name__)
            raise mail_unavailable() from None
