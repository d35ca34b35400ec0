"""Check a favsync response against the OpenAPI document the app serves."""
from __future__ import annotations

import functools
import re

from jsonschema import Draft202012Validator

from favsync.openapi import document


def favsync_prefix(app) -> str | None:
    for rule in app.url_map.iter_rules():
        if rule.endpoint.endswith("openapi.openapi_document"):
            return rule.rule.removesuffix("/openapi.json")
    return None


def messages_prefix(app) -> str | None:
    """Where the app mounted the messages API (agents, listing events), or None."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "favsync_messages.send_message":
            return rule.rule.removesuffix("/messages")
    return None


def _ours(path: str, prefix: str, messages: str | None) -> bool:
    if path.startswith(prefix):
        return True
    return messages is not None and any(
        path.startswith(f"{messages}/{root}") for root in ("messages", "agents", "listings")
    )


@functools.cache
def _templates(prefix: str, max_favorites: int, messages: str | None) -> list[tuple[re.Pattern, str]]:
    paths = document(prefix, max_favorites, messages)["paths"]
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


def check(app, method: str, path: str, response) -> None:
    """Raise AssertionError when `response` is not what the document promises."""
    state = app.extensions.get("favsync")
    prefix = favsync_prefix(app)
    messages = messages_prefix(app)
    if state is None or prefix is None or not _ours(path, prefix, messages) or method == "OPTIONS":
        return
    limit = state.settings.max_favorites
    doc = document(prefix, limit, messages)
    template = next((p for rx, p in _templates(prefix, limit, messages) if rx.match(path)), None)
    operation = doc["paths"][template].get(method.lower()) if template else None
    if operation is None and method == "HEAD" and template:
        operation = doc["paths"][template].get("get")
    where = f"{method} {path} -> {response.status_code}"
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
    if "text/html" in spec["content"]:
        assert response.mimetype == "text/html", f"{where}: {response.mimetype}"
        return
    assert response.mimetype == "application/json", f"{where}: {response.mimetype}"
    _check_body(doc, spec["content"]["application/json"]["schema"], response, where)


def _check_body(doc: dict, schema: dict, response, where: str) -> None:
    validator = Draft202012Validator({**doc, **schema})
    errors = sorted(validator.iter_errors(response.get_json()), key=str)
    assert not errors, f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}"
