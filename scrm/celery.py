"""The Celery application; settings come from Django's (CELERY_* names)."""

import gc
import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")

# DjangoTask gives every task delay_on_commit(), the only way this project enqueues.
app = Celery("scrm", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def gc_freeze_startup(**_signal):
    """Put what a worker loaded at start (Django, the apps, the tasks: some 140,000 objects) out
    of the garbage collector's reach. Otherwise every full collection walks all of them — ~80 ms
    of CPU landing in the middle of whichever task allocates enough, e.g. one SLA sweep batch in
    three; frozen, a full collection only walks what tasks made since (~1 ms)."""
    gc.collect()
    gc.freeze()


worker_process_init.connect(gc_freeze_startup)  # each prefork child, once forked
worker_ready.connect(gc_freeze_startup)  # the main process (the solo and threads pools run tasks there)
