"""Blueprint: list, sync and delete a client's favourite listings."""
from flask import Blueprint, current_app, g

from . import validation
from .models import listing_ids, merge_favorites, remove_favorite
from .signals import favorites_changed, notify
from .tokens import auth_required

bp = Blueprint("favorites", __name__)


@bp.get("")
@auth_required
def list_favorites():
    """Return the client's favourites, oldest first."""
    return {"success": True, "favorites": listing_ids(g.client_id)}


@bp.post("/sync")
@auth_required
def sync_favorites():
    """Union-merge the device's favourites into the stored ones and return the result."""
    limit = current_app.extensions["favsync"].settings.max_favorites
    incoming = validation.listing_ids(validation.json_object(), limit)
    client_id = g.client_id
    favorites, added = merge_favorites(client_id, incoming, limit)
    if added:
        notify(favorites_changed, client_id=client_id, added=added, removed=[])
    return {"success": True, "favorites": favorites}


@bp.delete("/<listing_id>")
@auth_required
def delete_favorite(listing_id: str):
    """Remove one favourite; removing one that is not there also succeeds."""
    validation.listing_id(listing_id, ["path", "listing_id"])
    client_id = g.client_id
    favorites, removed = remove_favorite(client_id, listing_id)
    if removed:
        notify(favorites_changed, client_id=client_id, added=[], removed=[listing_id])
    return {"success": True, "favorites": favorites}
