"""A client's favourites: read, union-merge a device's list, remove one."""
from __future__ import annotations

import sqlalchemy as sa

from . import outbox
from .database import insert, serialize, session, utcnow
from .errors import too_many_favorites
from .models import Favorite


def listing_ids(client_id: int) -> list[str]:
    """Return the client's favourite listing ids, oldest first."""
    return list(
        session().scalars(
            sa.select(Favorite.listing_id)
            .where(Favorite.client_id == client_id)
            .order_by(Favorite.id)
        )
    )


def merge_favorites(client_id: int, incoming: list[str], limit: int) -> tuple[list[str], list[str]]:
    """Union `incoming` into the client's favourites; return (all, newly added).

    Rejects the whole merge when the union would hold more than `limit` ids.
    """
    db = session()
    # Two devices syncing one client take turns, so the limit check and the
    # returned list are exact; the statement count does not grow with the list.
    serialize(f"favorites:{client_id}")
    existing = listing_ids(client_id)
    known = set(existing)
    added = [listing_id for listing_id in dict.fromkeys(incoming) if listing_id not in known]
    if len(existing) + len(added) > limit:
        db.rollback()
        raise too_many_favorites(limit, len(existing) + len(added))
    if added:
        now = utcnow()
        db.execute(
            insert(Favorite)
            .values([{"client_id": client_id, "listing_id": i, "created_at": now} for i in added])
            .on_conflict_do_nothing(index_elements=["client_id", "listing_id"])
        )
        _changed(client_id, added=added, removed=[])
    db.commit()
    return existing + added, added


def remove_favorite(client_id: int, listing_id: str) -> tuple[list[str], bool]:
    """Delete one favourite if present; return (what remains, whether it was there)."""
    db = session()
    removed = db.execute(
        sa.delete(Favorite)
        .where(Favorite.client_id == client_id, Favorite.listing_id == listing_id)
        .returning(Favorite.id)
        .execution_options(synchronize_session=False)
    ).first()
    remaining = listing_ids(client_id)
    if removed is not None:
        _changed(client_id, added=[], removed=[listing_id])
    db.commit()
    return remaining, removed is not None


def _changed(client_id: int, *, added: list[str], removed: list[str]) -> None:
    """Tell the CRM, in the transaction that made the change."""
    outbox.add_event(
        "favorites.changed", {"client_id": client_id, "added": added, "removed": removed}
    )
