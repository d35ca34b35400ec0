"""Where favsync's routes sit in a host's URL map, however the host mounts the blueprint."""
from flask.sansio.blueprints import BlueprintSetupState


def mount_root(state: BlueprintSetupState) -> str:
    """The rule for the root of a mount: the URL prefix itself (""), or "/" without a prefix.

    A host may mount favsync with only a subdomain (`subdomain="api"`); Werkzeug
    refuses the empty rule then, and the favourites list is served at "/".
    """
    return "" if (state.url_prefix or "").strip("/") else "/"
