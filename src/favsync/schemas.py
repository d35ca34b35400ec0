"""Pydantic models of what a client sends and what favsync answers; the OpenAPI schemas come from here.

A view reads its input with `parse(Model)` (the JSON body), `form(Model)` (a
form body), `query(Model)`, `header(name, Type)` and `path(name, value, Type)`;
any problem is a 400 whose details are pydantic's loc/msg/type, the loc
starting with "body", "query", "header" or "path". Seed 002's login reads its
body with `parse_seed(Model)`: a problem is its 422, pydantic's own items with
input and ctx.
"""
from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from email_validator import EmailNotValidError, validate_email
from flask import request
from pydantic import (
    AfterValidator,
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticCustomError
from typing_extensions import NotRequired, TypedDict
from werkzeug.exceptions import BadRequest

from .errors import invalid_json, too_many_sent, unprocessable_body, validation_error
from .tokens import CODE_ALPHABET, CODE_LENGTH, MAGIC_SECRET, UUID

MAX_REPORTED_ERRORS = 20
REF_TEMPLATE = "#/components/schemas/{model}"

# --- field types ---------------------------------------------------------------

MAX_EMAIL_LENGTH = 254
# What every address the validator accepts looks like: at most 64 characters
# before one @ (RFC 5321), and a dot in the domain (IDNA turns the ideographic
# full stops into dots). The document states it, so a client can tell "0" is no
# address without asking.
EMAIL_SHAPE = re.compile(r"^\s*[^@\s]{1,64}@[^@]+[.\u3002\uff0e\uff61][^@]+$")


def _null_is_missing(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("missing", "Field required")
    return value


def _normalised_email(value: str) -> str:
    try:
        # SMTPUTF8 local parts are refused: many mail servers would not deliver them.
        # strict: the local part is at most 64 characters, as RFC 5321 says.
        checked = validate_email(
            value.strip().lower(), allow_smtputf8=False, check_deliverability=False, strict=True
        )
    except EmailNotValidError as exc:
        raise PydanticCustomError("value_error", str(exc)) from None
    if not EMAIL_SHAPE.fullmatch(value):
        raise PydanticCustomError("value_error", "An email address looks like name@example.com.")
    return checked.ascii_email.lower()


Email = Annotated[
    str,
    StringConstraints(max_length=MAX_EMAIL_LENGTH),
    AfterValidator(_normalised_email),
    BeforeValidator(_null_is_missing),
    Field(
        description="Trimmed, lower-cased and validated; international domains are kept in ASCII form, local parts must be ASCII.",
        examples=["user@example.com"],
        json_schema_extra={"pattern": EMAIL_SHAPE.pattern},
    ),
]
# Not only dots: "." and ".." would walk up any path built from the id.
ListingId = Annotated[
    str,
    StringConstraints(max_length=50, pattern=r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$"),
    Field(examples=["98970014"]),
]
# The view checks the shape and answers a malformed link with 400 invalid_token.
MagicToken = Annotated[
    str,
    Field(
        description="The secret from the emailed link (43 URL-safe characters), "
        "or the token of an agent's message (a UUID).",
        json_schema_extra={"pattern": f"^(?:{MAGIC_SECRET.pattern}|{UUID.pattern})$"},
    ),
]
Uuid = Annotated[str, StringConstraints(pattern=f"^{UUID.pattern}$"), AfterValidator(str.lower)]
SessionId = Annotated[
    Uuid,
    Field(
        description="The browser's anonymous session, linked to the client once they verify.",
        examples=["550e8400-e29b-41d4-a716-446655440000"],
    ),
]
# A path on the brokerage site: one leading slash, then printable ASCII without
# backslashes, the second character not a slash: this refuses //host, /\host,
# schemes, spaces and control characters.
NextPath = Annotated[
    str,
    StringConstraints(max_length=512, pattern=r"^/(?:[!-.0-\[\]-~][!-\[\]-~]*)?$"),
    Field(
        description="A path on the brokerage site to return to; returned by verify as `redirect`.",
        examples=["/listings/C9231328"],
    ),
]
_CODE_CHARACTER = "[2-9A-HJ-NP-Za-hj-np-z]"  # CODE_ALPHABET, in either case


def _typed_code(code: str) -> str:
    """The code as it was issued: upper-case, without the separator."""
    return code.upper().replace("-", "").replace(" ", "")


TypedCode = Annotated[
    str,
    StringConstraints(
        pattern=f"^{_CODE_CHARACTER}{{4}}[- ]?{_CODE_CHARACTER}{{4}}$",
    ),
    AfterValidator(_typed_code),
    Field(
        description=(
            f"The code from the email: {CODE_LENGTH} characters of {CODE_ALPHABET} "
            "(no 0, O, 1 or I), in either case, the middle dash optional."
        ),
        examples=["K7QM-3XPD"],
    ),
]

# A favourites version from an earlier answer (a 32-bit integer in SQL: a bigger
# one is no version of ours, and PostgreSQL would refuse it as a parameter).
MAX_VERSION = 2**31 - 1
Version = Annotated[
    int,
    Field(ge=0, le=MAX_VERSION, description="A favourites version from an earlier answer."),
]

# Agent messages (seed 001). Ids are the database's (32-bit) integers.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID, examples=[888888])]
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _from_query(value: Any) -> Any:
    """A number in a URL is text: take decimal digits as the integer they spell."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}", value):
        return int(value)
    return value


def _rfc3339(value: Any) -> datetime:
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise PydanticCustomError(
            "datetime_type", "A time looks like 2026-11-25T14:30:00.000Z (RFC 3339, with its offset)."
        )
    try:
        moment = datetime.fromisoformat(value.upper().replace(" ", "T"))
        moment.astimezone(timezone.utc)  # 0001-01-01T00:00+01:00 has no UTC time
    except (ValueError, OverflowError) as exc:
        raise PydanticCustomError("datetime_from_date_parsing", str(exc)) from None
    return moment


UrlId = Annotated[Id, BeforeValidator(_from_query)]
PageNum = Annotated[Annotated[int, Field(ge=1, le=MAX_ID)], BeforeValidator(_from_query)]
PageSize = Annotated[Annotated[int, Field(ge=1, le=100)], BeforeValidator(_from_query)]
Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_rfc3339), Field(examples=["2024-08-01T00:21:26.000Z"])
]
MessageToken = Annotated[
    Uuid,
    Field(
        description="A message's token (a UUID): every link of its email carries it as ?token=.",
        examples=["550e8400-e29b-41d4-a716-446655440000"],
    ),
]
MessageStatus = Literal["scheduled", "queued", "sent", "failed", "clicked"]
Link = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=r"^https?://[!-~]+$"),
    Field(examples=["https://homes.example/listings/C9231328"]),
]
MessageLink = Annotated[Link, StringConstraints(max_length=1000)]
AgentName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"),
    Field(examples=["Jane Doe"]),
]
Price = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False, examples=[475000])]
ListingStatus = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9 _-]{0,19}$"),
    Field(description='The MLS status: "A" (active), "Sld" (sold), ...', examples=["A"]),
]
EventId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,100}$"),
    Field(description="The MLS's id of the change: the same id again changes nothing.",
          examples=["mls-123-2026-11-25"]),
]

# --- request bodies ------------------------------------------------------------


class RequestBody(BaseModel):
    """A JSON object body; strict, so a number is not a string nor 1 a boolean."""

    model_config = ConfigDict(strict=True)
    body_required: ClassVar[bool] = True


class MagicLinkRequest(RequestBody):
    """Email a sign-in link to `email`."""

    email: Email
    next: NextPath | None = None


def _token_or_code(schema: dict) -> None:
    schema["properties"]["code"] = {
        **schema["properties"]["token"], "title": "Code", "description": "Seed 002's name for `token`."
    }
    schema.pop("required")
    schema["anyOf"] = [{"required": ["token"]}, {"required": ["code"]}]


class VerifyRequest(RequestBody):
    """Log in with the secret of an emailed link."""

    model_config = ConfigDict(json_schema_extra=_token_or_code)
    token: MagicToken = Field(validation_alias=AliasChoices("token", "code"))


class VerifyCodeRequest(RequestBody):
    """Log in with the code from the email."""

    email: Email
    code: TypedCode


class SyncRequest(RequestBody):
    """Merge the device's favourites: three ways from `base_version`, else the union.

    At most FAVSYNC_MAX_FAVORITES ids in `favorites` and in `removed` (their maxItems).
    """

    favorites: list[ListingId]
    # A factory, not default=[]: pydantic deep-copies a mutable default on every sync.
    # (The document still names the default: a factory's is not in the schema.)
    removed: list[ListingId] = Field(
        default_factory=list, json_schema_extra={"default": []},
        description="Ids the device un-hearted since its base version.")
    base_version: Version | None = Field(
        default=None, description="The version the device last received; without it, a union.")

    @field_validator("favorites", "removed", mode="before")
    @classmethod
    def _at_most_the_limit(cls, value: Any, info: ValidationInfo) -> Any:
        limit = info.context["max_favorites"]
        if isinstance(value, list) and len(value) > limit:
            raise too_many_sent(limit, len(value))  # an ApiError passes through pydantic as it is
        return value


class LogoutRequest(RequestBody):
    """End this device's session, or with `all` every session of the client."""

    body_required: ClassVar[bool] = False
    all: bool = False


class MagicLinkVerifyBody(RequestBody):
    """Seed 002: verify a magic link code (the secret from the email URL)."""

    code: str = Field(description="The magic link code from the email URL")
    deal_id: str | None = Field(
        default=None, description="Optional deal ID (from invite links) for post-login redirect"
    )


class ContentRequest(BaseModel):
    """What a message says (seed 001's content); every link and listing carries its token."""

    model_config = ConfigDict(strict=True)
    # Sized so that the largest message fits FAVSYNC_MAX_BODY_BYTES' default (64 KiB).
    message: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    # One line: a line break would be a header of its own in the email.
    subject: Annotated[str, StringConstraints(max_length=100, pattern=r"^[^\r\n]*$")] | None = None
    links: Annotated[list[MessageLink], Field(max_length=10)] = []
    listings: Annotated[list[ListingId], Field(max_length=50)] = []
    searches: Annotated[list[Annotated[int, Field(ge=0, le=2**53)]], Field(max_length=50)] = []
    pictures: Annotated[list[MessageLink], Field(max_length=10)] = []


class DeliveryRequest(BaseModel):
    model_config = ConfigDict(strict=True)
    scheduleDateTime: Timestamp | None = Field(
        None, description="Hold the email until then; null or absent: send now."
    )


def _optional(*names: str):
    """Document fields that may be absent but never null (their Python default is None)."""

    def drop_defaults(schema: dict) -> None:
        for name in names:
            schema["properties"][name].pop("default")

    return drop_defaults


def _client_or_email(schema: dict) -> None:
    _optional("clientId", "email")(schema)
    schema["oneOf"] = [{"required": ["clientId"]}, {"required": ["email"]}]


class SendMessageRequest(RequestBody):
    """Send a client a message (the Repliers Messages API's shape); `email` may name a new client."""

    model_config = ConfigDict(json_schema_extra=_client_or_email)
    sender: Literal["agent"]
    agentId: Id
    clientId: Id = None  # type: ignore[assignment]  (absent, never null: see _client_or_email)
    email: Email = None  # type: ignore[assignment]
    source: Literal["api", "bot"] = "api"
    content: ContentRequest
    delivery: DeliveryRequest = DeliveryRequest()

    @model_validator(mode="after")
    def _one_recipient(self) -> SendMessageRequest:
        if (self.clientId is None) == (self.email is None):
            raise PydanticCustomError("value_error", "Send either clientId or email, not both.")
        return self


class AgentRequest(RequestBody):
    """Add an agent to the key's brokerage."""

    name: AgentName
    email: Email


class ListingState(BaseModel):
    model_config = ConfigDict(strict=True)
    listPrice: Price
    status: ListingStatus


class ListingEventRequest(RequestBody):
    """A listing's price or status changed: alert every client who favourited it."""

    model_config = ConfigDict(json_schema_extra=_optional("url"))
    eventId: EventId
    type: Literal["price_change", "status_change"]
    previous: ListingState
    current: ListingState
    url: Link = Field(None, description="The listing's page; the alert links to it.")  # type: ignore[assignment]


class PreferencesRequest(RequestBody):
    """Turn the client's listing alerts on or off."""

    alerts: bool


class UnsubscribeRequest(RequestBody):
    """RFC 8058 one-click unsubscribe, as mail providers POST it (a form, not JSON)."""

    list_unsubscribe: Literal["One-Click"] = Field(alias="List-Unsubscribe")


class MessagesQuery(BaseModel):
    """GET /messages filters (Repliers' names), newest first, a page at a time."""

    model_config = ConfigDict(strict=True)
    token: MessageToken | None = None
    agentId: UrlId | None = None
    clientId: UrlId | None = None
    messageId: UrlId | None = None
    sender: Literal["agent", "client"] | None = None
    status: MessageStatus | None = None
    startTime: Timestamp | None = None
    endTime: Timestamp | None = None
    pageNum: PageNum = 1
    resultsPerPage: PageSize = 100


# --- answers -------------------------------------------------------------------


class Accepted(TypedDict):
    success: Literal[True]
    message: str


class Success(TypedDict):
    success: Literal[True]


class Login(TypedDict):
    """Logged in; the refresh token travels only in its cookie."""

    __pydantic_config__ = ConfigDict(extra="forbid")
    success: Literal[True]
    client_id: int
    auth_token: str
    favorites: list[ListingId]
    email: str
    version: Version
    same_browser: Annotated[bool, Field(description=(
        "Whether this browser (its X-Session-ID) is the one that asked for the link: "
        "when false, ask before adding this browser's favourites (login CSRF)."))]
    redirect: NotRequired[Annotated[str, Field(description="The `next` stored with the link, when there was one.")]]


class Refreshed(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    success: Literal[True]
    client_id: int
    email: str
    auth_token: str


class Favorites(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    success: Literal[True]
    favorites: list[ListingId]
    version: Version


class Synced(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    success: Literal[True]
    favorites: list[ListingId]
    version: Version
    merge: Annotated[Literal["union", "three-way"], Field(description="How the device's list was merged.")]


class Changes(TypedDict):
    """What changed since the version a device holds (`GET ?since=`)."""

    __pydantic_config__ = ConfigDict(extra="forbid")
    success: Literal[True]
    version: Version
    added: list[ListingId]
    removed: list[ListingId]


class Reset(TypedDict):
    """The changes since that version are no longer known: the whole list."""

    __pydantic_config__ = ConfigDict(extra="forbid")
    success: Literal[True]
    favorites: list[ListingId]
    version: Version
    reset: Literal[True]


class LoginUserDict(TypedDict):
    """Inner user payload of a login response."""

    __pydantic_config__ = ConfigDict(extra="ignore")
    id: str
    display_name: NotRequired[str | None]
    email: NotRequired[str | None]
    avatar_url: NotRequired[str | None]
    provider: NotRequired[str | None]


class LoginResponse(TypedDict):
    """Response from POST /auth/login and POST /auth/magic-link/verify.

    NOTE (D6 fix, May 2026): refresh tokens are emitted as Set-Cookie headers only — there is intentionally no refresh_token field in the body. Legacy UI code that read data.refresh_token was always reading undefined; that read has been removed in lockstep.
    """

    __pydantic_config__ = ConfigDict(extra="allow")
    access_token: str
    user: LoginUserDict
    expires_in_minutes: NotRequired[int | None]
    has_deals: NotRequired[bool | None]
    force_password_change: NotRequired[bool | None]
    matomo_visitor_id: NotRequired[str | None]
    redirect_deal_id: NotRequired[Annotated[
        str | None, Field(description="The `deal_id` sent, once the host's deal check accepts it.")
    ]]


class ValidationError(TypedDict):
    __pydantic_config__ = ConfigDict(extra="ignore")
    loc: Annotated[list[str | int], Field(title="Location")]
    msg: Annotated[str, Field(title="Message")]
    type: Annotated[str, Field(title="Error Type")]
    input: NotRequired[Annotated[Any, Field(title="Input")]]
    ctx: NotRequired[Annotated[dict, Field(title="Context")]]


class HTTPValidationError(TypedDict):
    __pydantic_config__ = ConfigDict(extra="ignore")
    detail: NotRequired[Annotated[list[ValidationError], Field(title="Detail")]]


class HTTPError(TypedDict):
    """Any other error of seed 002's login (an unknown, used or expired code...)."""

    __pydantic_config__ = ConfigDict(extra="forbid")
    detail: Annotated[str, Field(title="Detail")]


class Problem(TypedDict):
    """One invalid field: pydantic's loc, msg and type."""

    __pydantic_config__ = ConfigDict(extra="forbid")
    loc: Annotated[list[str | int], Field(examples=[["body", "email"]])]
    msg: str
    type: Annotated[str, Field(examples=["value_error"])]


class ErrorBody(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    code: Annotated[str, Field(examples=["validation_error"])]
    message: str
    details: list[Problem]


class Error(TypedDict):
    """Every error favsync answers."""

    __pydantic_config__ = ConfigDict(extra="forbid")
    success: Literal[False]
    error: ErrorBody


Time = Annotated[str, Field(description="UTC, with milliseconds.", examples=["2024-08-01T00:21:26.000Z"])]


class MessageContent(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    listings: list[str]
    searches: list[int]
    message: str
    subject: str | None
    links: list[str]
    pictures: list[str]


class MessageDelivery(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    scheduleDateTime: Time | None
    sentDateTime: Time | None
    status: MessageStatus


class Message(TypedDict):
    """A message in seed 001's shape (a client reading their own gets no token)."""

    __pydantic_config__ = ConfigDict(extra="forbid")
    messageId: int
    agentId: int
    sender: Literal["agent"]
    source: Literal["api", "bot"]
    clientId: int
    token: NotRequired[Annotated[str, StringConstraints(pattern=f"^{UUID.pattern}$")]]
    content: MessageContent
    delivery: MessageDelivery


class MessagesSent(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    messages: list[Message]


class MessagePage(TypedDict):
    """One page of messages, newest first."""

    __pydantic_config__ = ConfigDict(extra="forbid")
    page: int
    numPages: int
    pageSize: int
    count: int
    messages: list[Message]


class Agent(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    agentId: int
    name: str
    email: str


class ListingEventQueued(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    eventId: str
    queued: Annotated[int, Field(description="Alerts written, one per client who favourited the listing.")]


class Preferences(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")
    success: Literal[True]
    alerts: bool


# --- reading a request ---------------------------------------------------------

M = TypeVar("M", bound=RequestBody)


def parse(model: type[M], **context: Any) -> M:
    """Return the JSON body as `model`, or raise 400 naming each invalid field."""
    body = _json_object() if model.body_required or request.get_data(cache=True) else {}
    return _validated(model, body, ["body"], context)


def form(model: type[M]) -> M:
    """Return the form-encoded body (urlencoded or multipart) as `model`, or raise 400."""
    return _validated(model, request.form.to_dict(), ["body"])


class ListingQuery(BaseModel):
    """The query of GET favourites: `since`, and nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    since: Version | None = None


def query(model: type[BaseModel]) -> Any:
    """Return the URL's query as `model` (its strings read as numbers where it says so)."""
    if not request._get_current_object().query_string and model.model_config.get("frozen"):
        return _without_query(model)  # most requests: validated once, shared as it cannot change
    return _validated(model, request.args.to_dict(), ["query"], strict=False)


@functools.cache
def _without_query(model: type[BaseModel]) -> Any:
    return _validated(model, {}, ["query"], strict=False)


def parse_seed(model: type[M]) -> M:
    """Return the JSON body as `model`, or raise seed 002's 422 with pydantic's own items."""
    if not request.get_data(cache=True):
        raise unprocessable_body([{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}])
    try:
        if not request.is_json:
            raise BadRequest("Content-Type is not application/json")
        body = request.get_json()
    except (BadRequest, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise unprocessable_body([{
            "type": "json_invalid", "loc": ["body"], "msg": "JSON decode error", "input": {},
            "ctx": {"error": getattr(exc, "description", None) or exc.__class__.__name__},
        }]) from None
    try:
        return _adapter(model).validate_python(body, strict=True)
    except PydanticValidationError as exc:
        raise unprocessable_body([
            _jsonable({**problem, "loc": ["body", *problem["loc"]]})
            for problem in exc.errors(include_url=False)[:MAX_REPORTED_ERRORS]
        ]) from None


def _jsonable(problem: dict) -> dict:
    # ctx may hold exception objects (a custom validator's ValueError): their text.
    if "ctx" in problem:
        problem["ctx"] = {
            key: value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
            for key, value in problem["ctx"].items()
        }
    return problem


def header(name: str, type_: Any) -> Any:
    """Return the request header `name` as `type_`, or None when it was not sent."""
    value = sent_header(name)
    return None if value is None else _validated(type_, value, ["header", name])


def sent_header(name: str) -> str | None:
    """The request header `name` (not Content-Type or Content-Length), or None when it was
    not sent: werkzeug's headers.get, without raising and catching a KeyError for a
    header most requests do not send."""
    return request._get_current_object().environ.get(_environ_key(name))


@functools.cache
def _environ_key(header_name: str) -> str:
    return f"HTTP_{header_name.upper().replace('-', '_')}"  # as WSGI names a header


def path(name: str, value: str, type_: Any) -> Any:
    """Return the URL's `name` part as `type_`."""
    return _validated(type_, value, ["path", name])


def _json_object() -> dict:
    """Return the request body as a JSON object, or raise 400."""
    asked = request._get_current_object()  # not each attribute through the proxy
    if not asked.is_json:
        raise invalid_json("Send a JSON object with Content-Type: application/json.")
    try:
        body = asked.get_json(force=True, silent=True)  # its type checked just above
    except RecursionError:  # absurdly deep nesting; silent=True does not cover it
        body = None
    if not isinstance(body, dict):
        raise invalid_json()
    return body


@functools.cache
def _adapter(type_: Any) -> TypeAdapter:
    return TypeAdapter(type_)


def _validated(type_: Any, value: Any, loc: list, context: dict | None = None, *,
               strict: bool = True) -> Any:
    try:
        return _adapter(type_).validate_python(value, strict=strict, context=context)
    except PydanticValidationError as exc:
        problems = exc.errors(include_url=False, include_context=False, include_input=False)
        raise validation_error([
            {"loc": [*loc, *problem["loc"]], "msg": problem["msg"], "type": problem["type"]}
            for problem in problems[:MAX_REPORTED_ERRORS]
        ]) from None


# --- the OpenAPI components ----------------------------------------------------

REQUESTS = (
    MagicLinkRequest, VerifyRequest, VerifyCodeRequest, SyncRequest, LogoutRequest,
    MagicLinkVerifyBody, SendMessageRequest, AgentRequest, ListingEventRequest,
    PreferencesRequest, UnsubscribeRequest,
)
ANSWERS = (
    Accepted, Success, Login, Refreshed, Favorites, Synced, Changes, Reset, Error,
    LoginResponse, HTTPValidationError, HTTPError,
    MessagesSent, MessagePage, Agent, ListingEventQueued, Preferences,
)
# Field types the document names, for its parameters.
NAMED_TYPES = {
    "Email": Email, "ListingId": ListingId, "MagicToken": MagicToken, "SessionId": SessionId,
    "Version": Version, "MessageToken": MessageToken, "UrlId": UrlId, "Timestamp": Timestamp,
    "MessageStatus": MessageStatus, "Sender": Literal["agent", "client"],
    "PageNum": PageNum, "PageSize": PageSize,
}


def openapi_schemas(max_favorites: int) -> dict:
    """Return the document's component schemas, with this app's favourites limit."""
    named = {model.__name__: model for model in REQUESTS + ANSWERS} | NAMED_TYPES
    inputs = [(name, "validation", _adapter(type_).core_schema) for name, type_ in named.items()]
    by_name, definitions = GenerateJsonSchema(ref_template=REF_TEMPLATE).generate_definitions(inputs)
    schemas = {**definitions}
    for (name, _mode), schema in by_name.items():
        schemas.setdefault(name, schema)  # a type without a definition of its own
    for field in ("favorites", "removed"):
        schemas["SyncRequest"]["properties"][field]["maxItems"] = max_favorites
    return schemas
