"""Schemathesis against /api/schema/ (issue 13): generated requests, valid and invalid, to every API
operation, on PostgreSQL (where a NUL in JSON is an error the database raises) — no server error
and every answer as the schema documents it. Bounded examples; the per-key rate limit lifted."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scrm.tenancy import tenant_scope
from tests.factories import published_template
from tickets.services import api_key_create


@pytest.fixture
def _connection_kept():
    """The WSGI handler closes the database connection after each request (request_finished);
    Django's test client turns that off, and so must a test that calls the app itself, or the
    test's transaction is gone after the first request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_secret(tenant_a, settings, _connection_kept):
    settings.API_RATE_PER_MINUTE = 1_000_000
    with tenant_scope(tenant_a):
        published_template(tenant_a, slug="complaint")
        return api_key_create(tenant=tenant_a, name="schemathesis")[1]


# The schema as the site serves it; its view reads no database, so loading it at import is cheap.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@schema.parametrize()
@hypothesis_settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.function_scoped_fixture])
def test_api_answers_as_its_schema_says(case, api_secret):
    # Server errors and answers the schema does not document. Not positive/negative data
    # acceptance: a schema-valid body still names a template that must exist (a 400), and an
    # unknown query parameter is ignored, as HTTP APIs do.
    case.call_and_validate(headers={"Authorization": f"Api-Key {api_secret}"}, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
        response_schema_conformance])
