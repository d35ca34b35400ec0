"""Blueprint: list, sync and delete a client's favourite listings."""
import re

from flask import Blueprint, request
from werkzeug.datastructures import ETags

from . import schemas
from .auth import credentials_required
from .models import Credentials
from .mounting import mount_root
from .signals import favorites_changed, notify
from .state import settings
from .sync import DeviceList, Listing, changes_since, current, merge_favorites, remove_favorite

bp = Blueprint("favorites", __name__)

# Caches (the browser's too) must ask again every time; the ETag makes asking cheap.
REVALIDATE = {"Cache-Control": "private, no-cache"}


@credentials_required
def list_favorites(held: Credentials):
    """Return the client's favourites, oldest first; with ?since=N, what changed since version N."""
    since = schemas.query(schemas.ListingQuery).since
    if since is not None:
        changes = changes_since(held, since)
        if isinstance(changes, Listing):  # N is older than the kept tombstones, or unknown
            return {"success": True, "favorites": changes.favorites, "version": changes.version,
                    "reset": True}
        return {"success": True, "version": changes.version, "added": changes.added,
                "removed": changes.removed}
    named = _etags_the_device_holds()
    listing = current(held, unless=_versions_named(named, held.client_id))
    etag = _etag(held.client_id, listing.version)
    headers = {"ETag": f'"{etag}"', **REVALIDATE}
    if named is not None and named.contains_weak(etag):
        return "", 304, headers
    return {"success": True, "favorites": listing.favorites, "version": listing.version}, headers


# At the prefix itself ("/api/v1/favorites"), or at "/" of a host's subdomain.
bp.record(
    lambda state: state.add_url_rule(mount_root(state), view_func=list_favorites, methods=["GET"])
)


@bp.post("/sync")
@credentials_required
def sync_favorites(held: Credentials):
    """Merge the device's favourites three ways from its base version, else union-merge them."""
    limit = settings().max_favorites
    body = schemas.parse(schemas.SyncRequest, max_favorites=limit)
    device = DeviceList(
        favorites=body.favorites,
        removed=body.removed,
        base_version=body.base_version,
        session_id=schemas.header("X-Session-ID", schemas.SessionId),
    )
    merged = merge_favorites(held, device, limit)
    if merged.added or merged.removed:
        notify(favorites_changed, client_id=held.client_id, added=merged.added, removed=merged.removed)
    return {"success": True, "favorites": merged.favorites, "version": merged.version,
            "merge": merged.merge}


@bp.delete("/<listing_id>")
@credentials_required
def delete_favorite(held: Credentials, listing_id: str):
    """Remove one favourite; removing one that is not there also succeeds."""
    schemas.path("listing_id", listing_id, schemas.ListingId)
    listing, removed = remove_favorite(held, listing_id)
    if removed:
        notify(favorites_changed, client_id=held.client_id, added=[], removed=[listing_id])
    return {"success": True, "favorites": listing.favorites, "version": listing.version}


def _etag(client_id: int, version: int) -> str:
    """The ETag of the client's list at `version` (the client too: browsers share caches)."""
    return f"favsync-{client_id}-{version}"


# favsync-<client>-<version>; longer numbers are no client's or version's.
OWN_ETAG = re.compile(r"favsync-([0-9]{1,19})-([0-9]{1,18})")


def _etags_the_device_holds() -> ETags | None:
    """The ETags of If-None-Match; None when it was not sent (most requests: no
    werkzeug ETags to build and ask)."""
    if schemas.sent_header("If-None-Match") is None:
        return None
    return request._get_current_object().if_none_match


def _versions_named(named: ETags | None, client_id: int) -> list[int]:
    """The versions of this client's list the ETags name: the list need not be read when
    it is one of them."""
    if not named:
        return []
    client = str(client_id)
    held = [
        int(match[2]) for tag in named.as_set(include_weak=True)
        if tag and (match := OWN_ETAG.fullmatch(tag)) and match[1] == client
    ]
    return [version for version in held if version <= schemas.MAX_VERSION]  # bigger: not ours
