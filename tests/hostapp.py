"""A brokerage's existing Flask site, embedding favsync as README.md shows."""
import hashlib

import sqlalchemy as sa
from flask import Flask, render_template_string, request
from flask_limiter import ExemptionScope, Limiter
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import favsync


class HostBase(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=HostBase)
mail = Mail()
limiter = Limiter(lambda: request.remote_addr or "", default_limits=["3 per minute"])
favorites = favsync.FavSync()


class Listing(db.Model):
    __tablename__ = "listings"
    id: Mapped[str] = mapped_column(primary_key=True)
    address: Mapped[str]


class Lead(db.Model):
    __tablename__ = "leads"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]
    session_id: Mapped[str | None]


def include_name(name, type_, parent_names):
    """The site's own migration filter, combined with favsync's."""
    if type_ == "table" and name == "spatial_ref_sys":  # PostGIS's table, not the site's
        return False
    return favsync.include_name(name, type_, parent_names)


class Deal(db.Model):
    """A purchase the site's agents handle; invite links carry its id."""

    __tablename__ = "deals"
    id: Mapped[str] = mapped_column(primary_key=True)
    buyer_email: Mapped[str]
    buyer_name: Mapped[str]


@favorites.login_profile
def login_profile(*, client_id, email, **extra):
    """What the site knows about a visitor who signs in by seed 002's login."""
    deal = db.session.scalar(sa.select(Deal).where(Deal.buyer_email == email).limit(1))
    return favsync.Profile(
        display_name=deal.buyer_name if deal else None,
        avatar_url=f"https://lakeside.example/avatars/{client_id}.png",
        has_deals=deal is not None,
        matomo_visitor_id=hashlib.sha256(email.encode()).hexdigest()[:16],
    )


@favorites.deal_access
def may_open_deal(*, email, deal_id, **extra):
    """An invite link's deal is the visitor's own."""
    deal = db.session.get(Deal, deal_id)
    return deal is not None and deal.buyer_email == email


def record_lead(app, *, session_id, email, created, **extra):
    """The moment an anonymous visitor becomes a lead: tell the CRM (once per lead)."""
    if not created:
        return
    db.session.add(Lead(email=email, session_id=session_id))
    db.session.commit()


def create_host_app(
    config: dict, *, mail_first: bool = True, subdomain_matching: bool = False, **favsync_options
) -> Flask:
    app = Flask(__name__, subdomain_matching=subdomain_matching)
    app.config.update(config)
    db.init_app(app)
    if mail_first:
        mail.init_app(app)
    limiter.init_app(app)
    Migrate(app, db, include_name=include_name)  # leave favsync's tables alone
    favorites.init_app(app, db=db, **favsync_options)
    if not mail_first:
        mail.init_app(app)  # the order does not matter to favsync
    limiter.exempt(  # optional: favsync keeps its own limits
        favsync.blueprint,
        flags=ExemptionScope.DEFAULT | ExemptionScope.APPLICATION | ExemptionScope.DESCENDENTS,
    )
    favsync.client_verified.connect(record_lead, app)

    @app.get("/")
    def home():
        return "<h1>Lakeside Homes</h1>"

    @app.get("/saved-homes")
    def saved_homes():
        visitor = favsync.current_client()  # by the refresh cookie, or a Bearer token
        if visitor is None:
            return "<p>Sign in to see your saved homes.</p>"
        return render_template_string(
            "<p>{{ email }}: {{ ids|join(' ') }}</p>",
            email=visitor.email,
            ids=favsync.favorites_of(visitor.id),
        )

    @app.get("/boom")
    def boom():
        raise RuntimeError("a host bug")

    @app.errorhandler(404)
    def page_not_found(error):
        return "<h1>Page not found</h1>", 404

    @app.errorhandler(405)
    def method_not_allowed(error):
        return "<h1>Not like that</h1>", 405

    @app.errorhandler(429)
    def slow_down(error):
        return "<h1>Slow down</h1>", 429

    @app.errorhandler(500)
    def server_error(error):
        return "<h1>Sorry, our fault</h1>", 500

    return app
