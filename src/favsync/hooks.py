"""What a host site adds to seed 002's login answer: the visitor's profile and deal check.

A host registers them on its FavSync:

    @favorites.login_profile
    def profile(*, client_id, brokerage_id, email, session_id, **extra):
        return favsync.Profile(display_name=..., has_deals=...)

    @favorites.deal_access
    def may_open(*, client_id, brokerage_id, email, deal_id, **extra):
        return deal_id in deals_of(email)

Without them, or when one raises or answers something else, the safe defaults
hold: the email's local part as the name, no avatar, no deals, no Matomo id,
and no deal to redirect to.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Callable

import pydantic

from .sessions import Login

log = logging.getLogger("favsync.hooks")


# Checked when made: a host's Profile(has_deals="yes") fails in its hook, not in the answer.
@pydantic.dataclasses.dataclass(frozen=True, config=pydantic.ConfigDict(strict=True))
class Profile:
    """What the host knows about a visitor who just signed in; every field may stay unset."""

    display_name: str | None = None  # None: the email's local part
    avatar_url: str | None = None
    has_deals: bool = False
    matomo_visitor_id: str | None = None


@dataclass
class LoginHooks:
    """The host's hooks, shared by every app one FavSync is initialised on."""

    profile: Callable[..., Profile | None] | None = field(default=None)
    deal_access: Callable[..., bool] | None = field(default=None)

    def profile_of(self, login: Login) -> Profile:
        """The host's profile of the visitor, its gaps (or a failing hook) filled with defaults."""
        profile = self._call(self.profile, login) if self.profile else None
        if not isinstance(profile, Profile):
            if profile is not None:
                log.error("the login_profile hook returned a %s, not a favsync.Profile",
                          type(profile).__name__)
            profile = Profile()
        if profile.display_name is None:
            profile = dataclasses.replace(profile, display_name=login.email.partition("@")[0])
        return profile

    def allowed_deal(self, login: Login, deal_id: str | None) -> str | None:
        """`deal_id` if the host's deal_access hook says True for this visitor, else None."""
        if deal_id is None or self.deal_access is None:
            return None
        return deal_id if self._call(self.deal_access, login, deal_id=deal_id) is True else None

    @staticmethod
    def _call(hook: Callable, login: Login, **more):
        # The login is committed: a host's bug must not turn it into an error.
        try:
            return hook(**login.visitor(), **more)
        except Exception:
            log.exception("the %s hook failed; using favsync's default", hook.__name__)
            return None
