"""Integration suite: PostgreSQL + Redis on 127.0.0.1 and a real Celery worker in a thread."""

import pytest
from django.conf import settings
from django.db import connection

from scrm import celery_app


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _needs_real_services(request):
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("integration suite needs DATABASE_URL (PostgreSQL) and REDIS_URL: run `make test-integration`")


@pytest.fixture
def celery_worker_thread(transactional_db):
    """A real worker consuming from Redis; tasks see what the test committed."""
    from celery.contrib.testing.worker import start_worker

    celery_app.conf.task_always_eager = False
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=20) as worker:
        yield worker
