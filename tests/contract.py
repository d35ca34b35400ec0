"""Check a favsync response against the OpenAPI document the app serves."""
from __future__ import annotations

import functools
import re

from jsonschema import Draft202012Validator
from werkzeug.exceptions import HTTPException

from favsync.openapi import document


def _prefix(app, endpoint: str, suffix: str) -> str | None:
    for rule in app.url_map.iter_rules():
        if rule.endpoint.endswith(endpoint):
            return rule.rule.removesuffix(suffix)
    return None


def favsync_prefix(app) -> str | None:
    return _prefix(app, "openapi.openapi_document", "/openapi.json")


def seed_login_prefix(app) -> str | None:
    """Where the app serves seed 002's login (POST <prefix>/magic-link/verify), or None."""
    return _prefix(app, "favsync_auth.verify_magic_link_code", "/magic-link/verify")


def messages_prefix(app) -> str | None:
    """Where the app mounted the messages API (agents, listing events), or None."""
    return _prefix(app, "favsync_messages.send_message", "/messages")


def _ours(path: str, prefix: str, auth_prefix: str | None, messages: str | None) -> bool:
    if path.startswith(prefix) or (auth_prefix is not None and path.startswith(auth_prefix)):
        return True
    return messages is not None and any(
        path.startswith(f"{messages}/{root}") for root in ("messages", "agents", "listings")
    )


@functools.cache
def _templates(prefix: str, auth_prefix: str | None, messages: str | None,
               max_favorites: int) -> list[tuple[re.Pattern, str]]:
    paths = document(prefix, auth_prefix, messages, max_favorites)["paths"]
    # Literal paths before templated ones, as the router prefers them.
    ordered = sorted(paths, key=lambda p: ("{" in p, p))
    return [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"), p) for p in ordered]


def deref(doc: dict, node: dict) -> dict:
    while isinstance(node, dict) and set(node) == {"$ref"}:
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def served_by_favsync(app, request) -> bool:
    """Whether a favsync route (or its catch-all) answered: a host's own pages are not checked."""
    try:
        endpoint, _ = app.create_url_adapter(request).match(method=request.method)
    except HTTPException:
        return False
    return endpoint.startswith("favsync.")


def check(app, method: str, path: str, response) -> None:
    """Raise AssertionError when `response` is not what the document promises."""
    state = app.extensions.get("favsync")
    prefix, auth_prefix, messages = favsync_prefix(app), seed_login_prefix(app), messages_prefix(app)
    if state is None or prefix is None or method == "OPTIONS":
        return
    if not _ours(path, prefix, auth_prefix, messages):
        return
    in_seed_login = auth_prefix is not None and path.startswith(auth_prefix) and not path.startswith(prefix)
    limit = state.settings.max_favorites
    doc = document(prefix, auth_prefix, messages, limit)
    templates = _templates(prefix, auth_prefix, messages, limit)
    template = next((p for rx, p in templates if rx.match(path)), None)
    operation = doc["paths"][template].get(method.lower()) if template else None
    if operation is None and method == "HEAD" and template:
        operation = doc["paths"][template].get("get")
    where = f"{method} {path} -> {response.status_code}"
    if operation is None and in_seed_login:
        return  # the rest of seed 002's prefix may be the host's
    if operation is None:
        assert response.status_code in (404, 405), f"{where}: undocumented"
        _check_body(doc, {"$ref": "#/components/schemas/Error"}, response, where)
        return
    responses = operation["responses"]
    assert str(response.status_code) in responses, f"{where}: status not in the document"
    spec = deref(doc, responses[str(response.status_code)])
    for name, header in spec.get("headers", {}).items():
        header = deref(doc, header)
        if header.get("required"):
            assert name in response.headers, f"{where}: missing header {name}"
    if method == "HEAD" or "content" not in spec:
        assert not response.get_data(), f"{where}: a body where none is documented"
        return
    assert response.mimetype in spec["content"], f"{where}: {response.mimetype}"
    if response.mimetype == "application/json":
        _check_body(doc, spec["content"]["application/json"]["schema"], response, where)


def _check_body(doc: dict, schema: dict, response, where: str) -> None:
    validator = Draft202012Validator({**doc, **schema})
    errors = sorted(validator.iter_errors(response.get_json()), key=str)
    assert not errors, f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}"
