"""API keys: how brokerage servers authenticate to the messages API. Only digests are stored."""
from __future__ import annotations

import sqlalchemy as sa

from .database import session, utcnow
from .errors import invalid_api_key
from .models import ApiKey, Brokerage
from .tokens import is_api_key, new_api_key, sha256_hex


def create(brokerage_id: int, label: str | None = None) -> str:
    """Store a new key for the brokerage and return it: the only time it is seen in clear."""
    key, digest = new_api_key()
    session().execute(sa.insert(ApiKey).values(
        brokerage_id=brokerage_id, digest=digest, label=label, created_at=utcnow()
    ))
    session().commit()
    return key


def listed() -> list[sa.Row]:
    """Every key: (id, brokerage, label, created_at, revoked_at), oldest first."""
    return session().execute(
        sa.select(ApiKey.id, Brokerage.name.label("brokerage"), ApiKey.label,
                  ApiKey.created_at, ApiKey.revoked_at)
        .join(Brokerage, Brokerage.id == ApiKey.brokerage_id)
        .order_by(ApiKey.id)
    ).all()


def revoke(key_id: int) -> bool:
    """Revoke a key from now on; False if there is no such live key."""
    revoked = session().execute(
        sa.update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session().commit()
    return revoked.rowcount == 1


def brokerage_for(key: str | None) -> int:
    """Return the id of the brokerage whose live key this is, or raise 401."""
    if key is None:
        raise invalid_api_key("Send the brokerage's API key as X-API-Key.")
    brokerage_id = None
    if is_api_key(key):
        brokerage_id = session().scalar(
            sa.select(ApiKey.brokerage_id).where(
                ApiKey.digest == sha256_hex(key), ApiKey.revoked_at.is_(None)
            )
        )
    if brokerage_id is None:  # the same answer for malformed, unknown and revoked keys
        raise invalid_api_key("The API key is not valid.")
    return brokerage_id
