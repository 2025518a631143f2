"""SCRM work orders: the project package and the core app (tenancy, organisation, customers)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
