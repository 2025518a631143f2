"""Shared fixtures: two tenants, one user per role in tenant A, an admin in tenant B, scopes
and logged-in clients. Celery runs eagerly here except in the integration suite."""

import os

import hypothesis
import pytest
from django.test import Client

from scrm import celery_app
from scrm.models import Role
from scrm.services import membership_set
from scrm.tenancy import tenant_scope
from tests.factories import StaffProfileFactory, TenantFactory, UserFactory
from tests.guards import watched_config_bulk_writes_refused

# CI runs the property tests on a fixed seed (CI=true), so a red run is the code's, reproducible,
# and not a new random example; local runs keep exploring with fresh examples.
if os.environ.get("CI"):
    hypothesis.settings.register_profile("ci", derandomize=True, print_blob=True)
    hypothesis.settings.load_profile("ci")

PASSWORD = "pw-Test-123"


@pytest.fixture(autouse=True)
def _celery_eager(request):
    eager = request.node.get_closest_marker("integration") is None
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True, scope="session")
def _watched_config_written_through_the_orm():
    # Any test whose code calls QuerySet.update()/bulk_update()/bulk_create() on a model
    # config_watch watches fails (tests/guards.py says why).
    with watched_config_bulk_writes_refused():
        yield


@pytest.fixture(autouse=True)
def _no_idle_timeout(settings):
    # Tests travel hours and days with a signed-in client; tests/scrm/test_security.py turns it on.
    settings.SESSION_IDLE_TIMEOUT = 0


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # Tests and the demo seeding they run create many users; PBKDF2 would dominate the suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="味道江南餐饮集团", slug="weidao")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="美嘉家电售后服务", slug="meijia")


@pytest.fixture
def scope_a(tenant_a):
    with tenant_scope(tenant_a):
        yield tenant_a


@pytest.fixture
def scope_b(tenant_b):
    with tenant_scope(tenant_b):
        yield tenant_b


def make_member(tenant, role, username):
    user = UserFactory(username=username, first_name=username)
    with tenant_scope(tenant):
        membership_set(tenant=tenant, user=user, role=role)
        StaffProfileFactory(tenant=tenant, user=user, display_name=username)
    return user


@pytest.fixture
def admin_a(tenant_a):
    return make_member(tenant_a, Role.ADMIN, "admin_a")


@pytest.fixture
def manager_a(tenant_a):
    return make_member(tenant_a, Role.MANAGER, "manager_a")


@pytest.fixture
def regional_manager_a(tenant_a):
    return make_member(tenant_a, Role.REGIONAL_MANAGER, "rm_a")


@pytest.fixture
def agent_a(tenant_a):
    return make_member(tenant_a, Role.AGENT, "agent_a")


@pytest.fixture
def engineer_a(tenant_a):
    return make_member(tenant_a, Role.ENGINEER, "engineer_a")


@pytest.fixture
def finance_a(tenant_a):
    return make_member(tenant_a, Role.FINANCE, "finance_a")


@pytest.fixture
def admin_b(tenant_b):
    return make_member(tenant_b, Role.ADMIN, "admin_b")


@pytest.fixture
def client_for(db):
    """client_for(user) -> a Client signed in as that user."""

    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture(autouse=True)
def _real_channels(settings):
    # Tests exercise the real channel code against loopback stubs, never the console stand-in.
    settings.NOTIFICATIONS_CONSOLE = False
