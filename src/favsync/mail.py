"""Emails: render them, and hand them to SMTP (or, in development, to the log)."""
from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field

from email.utils import formataddr

from flask import Flask, current_app, render_template
from flask_mail import Connection, Mail, Message

from .config import ConfigError, Settings

log = logging.getLogger("favsync.mail")


@dataclass(frozen=True)
class Email:
    """A rendered email, as the outbox keeps it until it is delivered."""

    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)


class DeliveryError(Exception):
    """An email or webhook was not delivered; `permanent` when retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


def render_magic_link(*, to: str, brokerage: str, url: str, code: str, minutes: int) -> Email:
    """The sign-in email: a link and a typed code."""
    context = {"brokerage": brokerage, "url": url, "code": code, "minutes": minutes}
    return Email(
        to=to,
        subject=f"Your sign-in link for {brokerage}",
        text=render_template("favsync/email/magic_link.txt", **context),
        html=render_template("favsync/email/magic_link.html", **context),
    )


def render_message(
    *, to: str, subject: str, message: str, links: list[str], listings: list[tuple[str, str | None]],
    pictures: list[str], agent: tuple[str, str], brokerage: str, unsubscribe_url: str | None = None,
) -> Email:
    """An agent's message (or a listing alert): replies go to the agent, `agent` = (name, email).

    `listings` are (listing id, its link or None). With `unsubscribe_url` (alerts), the
    email carries RFC 8058 one-click unsubscribe headers.
    """
    context = {
        "message": message, "links": links, "pictures": pictures, "agent": agent[0],
        "brokerage": brokerage, "unsubscribe_url": unsubscribe_url,
        "listings": [{"id": listing_id, "url": url} for listing_id, url in listings],
    }
    headers = {"Reply-To": formataddr(agent)}
    if unsubscribe_url is not None:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return Email(
        to=to,
        subject=subject,
        text=render_template("favsync/email/message.txt", **context),
        html=render_template("favsync/email/message.html", **context),
        headers=headers,
    )


def render_alert(kind: str, **context) -> tuple[str, str]:
    """The subject and text of a listing alert, from favsync/alerts/<kind>.txt (a host may override it)."""
    template = current_app.jinja_env.get_template(f"favsync/alerts/{kind}.txt")
    module = template.make_module(context)
    return str(module.subject).strip(), str(module).strip()


class TimeoutConnection(Connection):
    """Flask-Mail's SMTP connection, with the timeout it lacks and TLS that verifies."""

    def __init__(self, mail, timeout: int, ca_file: str | None = None) -> None:
        super().__init__(mail)
        self.timeout = timeout
        self.ca_file = ca_file

    def configure_host(self) -> smtplib.SMTP:
        # smtplib's own default context verifies nothing: anyone on the path
        # could read every sign-in link. This one checks the certificate and the
        # host name, against the system's CAs or FAVSYNC_MAIL_TLS_CA_FILE.
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.mail.use_ssl:
            host = smtplib.SMTP_SSL(
                self.mail.server, self.mail.port, timeout=self.timeout, context=context
            )
        else:
            host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=self.timeout)
        if self.mail.use_tls:
            host.starttls(context=context)
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


class Mailer:
    """Sends favsync's emails by SMTP, or writes them to the log in development."""

    def __init__(self, own, sender: str | None, timeout: int, ca_file: str | None = None) -> None:
        self._own = own  # Flask-Mail state from FAVSYNC_MAIL_*; None: the host's Flask-Mail
        self._sender = sender  # FAVSYNC_MAIL_DEFAULT_SENDER
        self.timeout = timeout
        self.ca_file = ca_file

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
        return cls(own, settings.mail_default_sender, settings.mail_timeout,
                   settings.mail_tls_ca_file)

    def flask_mail(self):
        """The Flask-Mail state that sends: favsync's own, else the app's (looked up now, so a
        host may initialise Flask-Mail before or after favsync); None if there is neither."""
        return self._own or current_app.extensions.get("mail")

    def send(self, email: Email, uid: str) -> None:
        """Hand `email` to SMTP; raise DeliveryError if it was not taken."""
        state = self.flask_mail()
        if state is None:
            if not (current_app.debug or current_app.testing):
                raise DeliveryError(
                    "the site set MAIL_SERVER but never initialised Flask-Mail "
                    "(mail.init_app(app)); nor is FAVSYNC_MAIL_SERVER set"
                )
            log.warning("No mail server configured (FAVSYNC_MAIL_SERVER); the email to %s:\n"
                        "Subject: %s\n\n%s", email.to, email.subject, email.text)
            return
        sender = self._sender or state.default_sender or "no-reply@localhost"
        message = Message(
            subject=email.subject,
            recipients=[email.to],
            sender=sender,
            body=email.text,
            html=email.html,
            extra_headers=email.headers or None,
        )
        # Stable across retries, so a rare duplicate is recognisable.
        domain = str(sender).rpartition("@")[2].strip("> ") or "localhost"
        message.msgId = f"<{uid}@{domain}>"
        try:
            with TimeoutConnection(state, self.timeout, self.ca_file) as connection:
                connection.send(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"recipient refused ({codes})",
                                permanent=all(code >= 500 for code in codes)) from None
        except smtplib.SMTPDataError as exc:
            raise DeliveryError(f"message refused ({exc.smtp_code})",
                                permanent=exc.smtp_code >= 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP unavailable ({exc.__class__.__name__})") from None
