"""WSGI entry point for gunicorn and runserver."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")
application = get_wsgi_application()

# Load the URLconf (and with it every view, form and selector module) now, then put what the
# process holds at start out of the garbage collector's reach, as the Celery workers do: otherwise
# each full collection walks those objects inside whichever request happens to trigger it.
from django.urls import get_resolver  # noqa: E402

from scrm.celery import gc_freeze_startup  # noqa: E402

get_resolver().url_patterns  # noqa: B018
gc_freeze_startup()
