"""Blueprint: list, sync and delete a client's favourite listings."""
from flask import Blueprint, g

from . import schemas
from .auth import auth_required
from .mounting import mount_root
from .signals import favorites_changed, notify
from .state import settings
from .sync import listing_ids, merge_favorites, remove_favorite

bp = Blueprint("favorites", __name__)


@auth_required
def list_favorites():
    """Return the client's favourites, oldest first."""
    return {"success": True, "favorites": listing_ids(g.client_id)}


# At the prefix itself ("/api/v1/favorites"), or at "/" of a host's subdomain.
bp.record(
    lambda state: state.add_url_rule(mount_root(state), view_func=list_favorites, methods=["GET"])
)


@bp.post("/sync")
@auth_required
def sync_favorites():
    """Union-merge the device's favourites into the stored ones and return the result."""
    limit = settings().max_favorites
    incoming = schemas.parse(schemas.SyncRequest, max_favorites=limit).favorites
    favorites, added = merge_favorites(g.client_id, incoming, limit)
    if added:
        notify(favorites_changed, client_id=g.client_id, added=added, removed=[])
    return {"success": True, "favorites": favorites}


@bp.delete("/<listing_id>")
@auth_required
def delete_favorite(listing_id: str):
    """Remove one favourite; removing one that is not there also succeeds."""
    schemas.path("listing_id", listing_id, schemas.ListingId)
    favorites, removed = remove_favorite(g.client_id, listing_id)
    if removed:
        notify(favorites_changed, client_id=g.client_id, added=[], removed=[listing_id])
    return {"success": True, "favorites": favorites}
