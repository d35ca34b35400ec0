"""Read and check what a client sends; every problem becomes a 400 naming its field."""
from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email
from flask import request

from .errors import invalid_json, too_many_sent, validation_error

MAX_EMAIL_LENGTH = 254
LISTING_ID = re.compile(r"[A-Za-z0-9._-]{1,50}")
MAX_REPORTED_ERRORS = 20
# A favourites version from an answer; a number beyond 64 bits is none (and SQL could not take it).
VERSION = re.compile(r"[0-9]{1,19}")
MAX_VERSION = 2**63 - 1
SESSION_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def problem(loc: list, msg: str, type_: str) -> dict:
    """One entry of a validation error's details (seed 002's loc/msg/type)."""
    return {"loc": loc, "msg": msg, "type": type_}


def json_object() -> dict:
    """Return the request body as a JSON object, or raise 400."""
    if not request.is_json:
        raise invalid_json("Send a JSON object with Content-Type: application/json.")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # absurdly deep nesting; silent=True does not cover it
        body = None
    if not isinstance(body, dict):
        raise invalid_json()
    return body


def optional_json_object() -> dict:
    """Return the body as a JSON object; an empty body is an empty object."""
    return json_object() if request.get_data(cache=True) else {}


def email(body: dict) -> str:
    """Return the body's email, trimmed, lower-cased and checked."""
    value = body.get("email")
    if not isinstance(value, str):
        raise validation_error([problem(["body", "email"], "An email address is required.", "missing" if value is None else "string_type")])
    if len(value) > MAX_EMAIL_LENGTH:
        raise validation_error([problem(["body", "email"], f"An email address has at most {MAX_EMAIL_LENGTH} characters.", "string_too_long")])
    try:
        # SMTPUTF8 local parts are refused: many mail servers would not deliver them.
        checked = validate_email(value.strip().lower(), allow_smtputf8=False, check_deliverability=False)
    except EmailNotValidError as exc:
        raise validation_error([problem(["body", "email"], str(exc), "value_error")]) from None
    return checked.ascii_email.lower()


def session_id() -> str | None:
    """Return the X-Session-ID header as a lower-case UUID, if one was sent."""
    raw = request.headers.get("X-Session-ID")
    if raw is None:
        return None
    if not SESSION_ID.fullmatch(raw):
        raise validation_error([problem(
            ["header", "X-Session-ID"],
            "X-Session-ID must be a UUID such as 550e8400-e29b-41d4-a716-446655440000.",
            "uuid_parsing",
        )])
    return raw.lower()


def listing_id(value: str, loc: list) -> str:
    if not isinstance(value, str) or not LISTING_ID.fullmatch(value):
        raise validation_error([_listing_problem(loc)])
    return value


def listing_ids(body: dict, limit: int, field: str = "favorites") -> list[str]:
    """Return the body's list of listing ids, each checked, duplicates kept (at most `limit`)."""
    values = body.get(field)
    if not isinstance(values, list):
        raise validation_error([problem(["body", field], f"{field} must be a list of listing ids.", "missing" if values is None else "list_type")])
    if len(values) > limit:
        raise too_many_sent(limit, len(values))
    problems = [
        _listing_problem(["body", field, index])
        for index, value in enumerate(values)
        if not isinstance(value, str) or not LISTING_ID.fullmatch(value)
    ]
    if problems:
        raise validation_error(problems[:MAX_REPORTED_ERRORS])
    return values


def removed_ids(body: dict, limit: int) -> list[str]:
    """Return the sync body's optional `removed`: ids the device un-hearted since its base."""
    return listing_ids(body, limit, "removed") if "removed" in body else []


def base_version(body: dict) -> int | None:
    """Return the sync body's optional `base_version`: the version the device last received."""
    return _version_number(body.get("base_version"), ["body", "base_version"])


def since() -> int | None:
    """Return the optional `?since=` of a listing (the version the device holds); refuse other parameters."""
    unknown = [name for name in request.args if name != "since"]
    if unknown:
        raise validation_error([problem(["query", name], "Unknown query parameter; only since is accepted.", "extra_forbidden") for name in unknown[:MAX_REPORTED_ERRORS]])
    raw = request.args.get("since")
    if raw is not None and not VERSION.fullmatch(raw):
        raise validation_error([_version_problem(["query", "since"])])
    return _version_number(None if raw is None else int(raw), ["query", "since"])


def _version_number(value, loc: list) -> int | None:
    if value is not None and (type(value) is not int or not 0 <= value <= MAX_VERSION):
        raise validation_error([_version_problem(loc)])
    return value


def _version_problem(loc: list) -> dict:
    return problem(loc, f"{loc[-1]} must be a favourites version from an earlier answer (a whole number, 0 or more).", "int_type")


def _listing_problem(loc: list) -> dict:
    return problem(loc, "A listing id has 1 to 50 characters from A-Z, a-z, 0-9, '.', '_' and '-'.", "string_pattern_mismatch")


# A path on the brokerage site: one leading slash, then printable ASCII without
# backslashes, the second character not a slash: this refuses //host, /\host,
# schemes, spaces and control characters. (openapi.yaml holds the same pattern.)
NEXT_PATH = re.compile(r"/(?:[!-.0-\[\]-~][!-\[\]-~]*)?")
MAX_NEXT_LENGTH = 512
CODE = re.compile(r"[0-9]{6}")


def next_path(body: dict) -> str | None:
    """Return the body's optional `next`: where the visitor returns after logging in."""
    value = body.get("next")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NEXT_LENGTH or not NEXT_PATH.fullmatch(value):
        raise validation_error([problem(
            ["body", "next"],
            "next must be a path on this site such as /listings/C9231328 (at most 512 characters).",
            "value_error",
        )])
    return value


def login_token(body: dict) -> str:
    """Return the magic-link token of a POST verify (`token`, or seed 002's `code`)."""
    value = body.get("token", body.get("code"))
    if not isinstance(value, str):
        raise validation_error([problem(["body", "token"], "token is required.", "missing" if value is None else "string_type")])
    return value


def typed_code(body: dict) -> str:
    value = body.get("code")
    if not isinstance(value, str) or not CODE.fullmatch(value):
        raise validation_error([problem(["body", "code"], "code is the 6-digit number from the email.", "string_pattern_mismatch")])
    return value


def log_out_everywhere(body: dict) -> bool:
    value = body.get("all", False)
    if not isinstance(value, bool):
        raise validation_error([problem(["body", "all"], "all must be true or false.", "bool_type")])
    return value
