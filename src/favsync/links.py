"""Magic links: issue one (at most three pending per email), email it, redeem it by link or code."""
from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app, url_for

from . import messaging, outbox, sessions
from .database import serialize, session, utcnow
from .errors import (
    code_used,
    invalid_code,
    invalid_token,
    too_many_attempts,
    too_many_pending_links,
    token_expired,
    token_used,
)
from .mail import render_magic_link
from .models import MAX_CODE_ATTEMPTS, Brokerage, Client, MagicLink
from .requestlog import mask_email
from .state import state
from .tokens import (
    code_digest,
    is_magic_secret,
    is_message_token,
    new_code,
    new_secret,
    sha256_hex,
)

log = logging.getLogger("favsync.auth")

# The three-pending-links rule counts links requested within this window.
PENDING_WINDOW = timedelta(minutes=15)


def request_link(
    email: str, *, next_path: str | None, session_id: str | None, host: str, ip: str
) -> None:
    """Queue a one-time sign-in link and code for `email`, requested on `host` from `ip`.

    The link and its email commit together (the outbox); SMTP is never talked
    to here, so a refused or unreachable mail server looks like success.
    """
    favsync = state()
    settings = favsync.settings
    favsync.limits.hit_magic_link(email, ip)
    brokerage = Brokerage.for_host(host)
    db = session()
    # Count-then-insert races unless every request for this email waits its turn.
    serialize(f"magic-link:{email}")
    now = utcnow()
    pending = db.execute(
        sa.select(MagicLink.expires_at, MagicLink.created_at, MagicLink.failed_attempts).where(
            MagicLink.email == email,
            MagicLink.pending(now),  # dead links hold no slot
            MagicLink.created_at > now - PENDING_WINDOW,
        )
    ).all()
    if len(pending) >= settings.magic_link_max_pending:
        db.rollback()
        frees_at = min(min(row.expires_at, row.created_at + PENDING_WINDOW) for row in pending)
        raise too_many_pending_links(
            settings.magic_link_max_pending,
            retry_after=max(1, math.ceil((frees_at - now).total_seconds())),
        )
    try:
        favsync.limits.hit_email_sent()
    except Exception:
        db.rollback()
        raise
    secret, token_digest = new_secret()
    code, typed_code_digest = new_code(settings.secret_key, email)
    expires_at = now + timedelta(seconds=settings.magic_link_ttl)
    db.execute(
        sa.insert(MagicLink).values(
            brokerage_id=brokerage.id,
            email=email,
            token=token_digest,
            session_id=session_id,
            code=typed_code_digest,
            next_path=next_path,
            # A new link must not reset the wrong-code count of the email's live ones.
            failed_attempts=max((row.failed_attempts for row in pending), default=0),
            expires_at=expires_at,
            created_at=now,
        )
    )
    email_message = render_magic_link(
        to=email,
        brokerage=brokerage.name,
        url=_link_url(secret),
        code=code,
        minutes=settings.magic_link_ttl // 60,
    )
    # The email dies with its link: never delivered once the link has expired.
    outbox.add_email(email_message, expires_at=expires_at)
    db.commit()
    log.info("magic link queued for %s", mask_email(email))


def _link_url(secret: str) -> str:
    template = state().settings.magic_link_url
    if template is None:  # debug and testing only (config refuses it elsewhere)
        if "demo.landing" in current_app.view_functions:  # make run: the demo's landing page
            return url_for("demo.landing", token=secret, _external=True)
        return url_for("favsync.auth.verify_magic_link", token=secret, _external=True)
    return template.replace("{token}", secret)


def check_secret(secret: str) -> None:
    """Raise invalid_token unless `secret` has the shape of an emailed secret."""
    if not is_magic_secret(secret):
        raise invalid_token()


def check_any(token: str) -> None:
    """Raise invalid_token unless `token` looks like a magic-link secret or a message token."""
    if not is_message_token(token):
        check_secret(token)


def redeem_any(
    token: str, *, host: str, ip: str, session_id: str | None = None
) -> sessions.Login:
    """Log in with what an emailed link carried: a magic-link secret, or a message token
    (a UUID, from an agent's message or an alert) used on `host` from `ip`."""
    if is_message_token(token):
        return messaging.redeem_message_token(token, host=host, ip=ip, session_id=session_id)
    return redeem_link(token, session_id=session_id)


def redeem_link(secret: str, *, session_id: str | None = None) -> sessions.Login:
    """Consume a magic link exactly once and log its client in, creating the client if new."""
    check_secret(secret)
    token_digest = sha256_hex(secret)
    now = utcnow()
    # One conditional UPDATE decides the race: of any number of concurrent
    # redemptions, exactly one sees a row come back.
    consumed = session().execute(_consume(MagicLink.token == token_digest, now, by_code=False)).first()
    if consumed is None:
        session().rollback()
        raise _why_unredeemable(token_digest, now)
    return _log_in(consumed, now, session_id)


def redeem_code(email: str, code: str, *, session_id: str | None = None) -> sessions.Login:
    """Consume the pending link whose typed code this is; count a wrong code against the email."""
    db = session()
    digest = code_digest(state().settings.secret_key, email, code)
    # Guesses for one email take turns, so concurrent wrong codes cannot all be
    # checked before any of them is counted.
    serialize(f"magic-link:{email}")
    now = utcnow()
    match = (
        sa.select(MagicLink.id)
        .where(MagicLink.email == email, MagicLink.code == digest, MagicLink.code_pending(now))
        .order_by(MagicLink.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    consumed = db.execute(_consume(MagicLink.id == match, now, by_code=True)).first()
    if consumed is not None:
        return _log_in(consumed, now, session_id)
    if _code_was_used(email, digest, now):
        db.rollback()
        raise code_used()
    attempts = db.scalars(
        sa.update(MagicLink)
        .where(MagicLink.email == email, MagicLink.code_pending(now))
        .values(failed_attempts=MagicLink.failed_attempts + 1)
        .returning(MagicLink.failed_attempts)
        .execution_options(synchronize_session=False)
    ).all()
    db.commit()
    if (attempts and max(attempts) >= MAX_CODE_ATTEMPTS) or (
        not attempts and _has_dead_links(email, now)
    ):
        raise too_many_attempts()
    raise invalid_code()


def _consume(which, now: datetime, *, by_code: bool):
    """The conditional UPDATE that uses a link or its code once, returning what the login needs."""
    if by_code:
        usable, used = MagicLink.code_pending(now), {"code_used_at": now}
    else:
        usable, used = MagicLink.pending(now), {"used_at": now}
    return (
        sa.update(MagicLink)
        .where(which, usable)
        .values(**used)
        .returning(
            MagicLink.id,
            MagicLink.brokerage_id,
            MagicLink.email,
            MagicLink.session_id,
            MagicLink.next_path,
        )
        .execution_options(synchronize_session=False)
    )


def _code_was_used(email: str, digest: str, now: datetime) -> bool:
    """The right code, already used (it signed someone in): not a wrong guess."""
    return session().scalar(
        sa.select(sa.func.count()).where(
            MagicLink.email == email, MagicLink.code == digest,
            MagicLink.code_used_at.is_not(None), MagicLink.expires_at > now,
        )
    ) > 0


def _has_dead_links(email: str, now: datetime) -> bool:
    return session().scalar(
        sa.select(sa.func.count()).where(MagicLink.email == email, MagicLink.dead(now))
    ) > 0


def _why_unredeemable(token_digest: str, now: datetime):
    link = session().execute(
        sa.select(MagicLink.used_at, MagicLink.dead(now).label("dead")).where(
            MagicLink.token == token_digest
        )
    ).first()
    if link is None:
        return invalid_token()
    if link.used_at is not None:
        return token_used()
    if link.dead:
        return too_many_attempts()
    return token_expired()


def _log_in(consumed: sa.Row, now: datetime, requester: str | None) -> sessions.Login:
    """Log the link's client in; `requester` is the X-Session-ID of the browser verifying."""
    client = Client.find_or_create(consumed.brokerage_id, consumed.email)
    session().execute(
        sa.update(MagicLink)
        .where(MagicLink.id == consumed.id)
        .values(client_id=client.id)
        .execution_options(synchronize_session=False)
    )
    return sessions.sign_in(
        client.id,
        brokerage_id=consumed.brokerage_id,
        not_before=client.tokens_valid_after,
        created=bool(client.created),
        email=consumed.email,
        now=now,
        session_id=consumed.session_id,
        # Login CSRF: a link asked for in another browser may be someone else's account.
        same_browser=consumed.session_id is not None and consumed.session_id == requester,
        redirect=consumed.next_path,
    )
