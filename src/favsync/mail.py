"""The one seam through which every favsync email leaves."""
from __future__ import annotations

import logging
import smtplib

from flask import Flask, current_app, render_template
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

    def __init__(self, own, sender: str | None, timeout: int) -> None:
        self._own = own  # Flask-Mail state from FAVSYNC_MAIL_*; None: the host's Flask-Mail
        self._sender = sender  # FAVSYNC_MAIL_DEFAULT_SENDER
        self.timeout = timeout

    @classmethod
    def for_app(cls, app: Flask, settings: Settings) -> Mailer:
        """Use FAVSYNC_MAIL_* if set, else the host's Flask-Mail, else (debug only) the log."""
        own = None
        if settings.mail_server is not None:
            own = Mail().init_mail(
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
            app.extensions.setdefault("mail", own)
        elif not (app.debug or app.testing or "mail" in app.extensions or "MAIL_SERVER" in app.config):
            raise ConfigError(
                "FAVSYNC_MAIL_SERVER is not set and the app has no Flask-Mail settings: outside "
                "debug and testing favsync sends magic links by SMTP and will not write them to "
                "the log. Set FAVSYNC_MAIL_SERVER, or set the site's MAIL_SERVER (favsync then "
                "sends through the site's Flask-Mail, whether mail.init_app(app) runs before or "
                "after favsync's)"
            )
        return cls(own, settings.mail_default_sender, settings.mail_timeout)

    def flask_mail(self):
        """The Flask-Mail state that sends: favsync's own, else the app's (looked up now, so a
        host may initialise Flask-Mail before or after favsync); None if there is neither."""
        return self._own or current_app.extensions.get("mail")

    def send_magic_link(
        self, *, to: str, brokerage: str, url: str, code: str, minutes: int
    ) -> None:
        """Email a sign-in link and code; raise a 503 ApiError if SMTP will not take it."""
        context = {"brokerage": brokerage, "url": url, "code": code, "minutes": minutes}
        self._send(
            subject=f"Your sign-in link for {brokerage}",
            recipients=[to],
            body=render_template("favsync/email/magic_link.txt", **context),
            html=render_template("favsync/email/magic_link.html", **context),
        )

    def _send(self, **fields) -> None:
        state = self.flask_mail()
        if state is None:
            if not (current_app.debug or current_app.testing):
                log.error("cannot send email: the site set MAIL_SERVER but never initialised "
                          "Flask-Mail (mail.init_app(app)); nor is FAVSYNC_MAIL_SERVER set")
                raise mail_unavailable()
            log.warning("No mail server configured (FAVSYNC_MAIL_SERVER); the email to %s:\n%s",
                        ", ".join(fields["recipients"]), fields["body"])
            return
        sender = self._sender or state.default_sender or "no-reply@localhost"
        try:
            with TimeoutConnection(state, self.timeout) as connection:
                connection.send(Message(sender=sender, **fields))
        except (smtplib.SMTPException, OSError) as exc:
            log.error("could not send email: %s", exc.__class__.__name__)
            raise mail_unavailable() from None
