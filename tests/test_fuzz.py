"""Schemathesis fuzzes the app in process against its own OpenAPI document.

A fixed seed and budget keep the run repeatable and short. It asserts: no
server errors, every response as documented (status, content type, headers,
body), and no schema-violating request accepted.
"""
import tempfile
from pathlib import Path

import flask_migrate
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from favsync import create_app

from conftest import MIGRATIONS, api_key_for, auth_token_for

pytestmark = pytest.mark.fuzz

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


def _fuzzed_app():
    workdir = Path(tempfile.mkdtemp(prefix="favsync-fuzz-"))
    app = create_app({
        "TESTING": True,  # emails go to the log: the fuzzer sends hundreds
        "FAVSYNC_SECRET_KEY": "fuzz-secret-key-that-is-long-enough-for-hs256",
        "FAVSYNC_SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'favsync.sqlite3'}",
    })
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS)
    return app, auth_token_for(app, "fuzz@example.com"), api_key_for(app)


APP, TOKEN, API_KEY = _fuzzed_app()
schema = schemathesis.openapi.from_wsgi("/api/v1/favorites/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=100,
    derandomize=True,  # the same examples on every run
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_the_api_keeps_its_contract(case):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}", "X-API-Key": API_KEY}, checks=CHECKS
    )
