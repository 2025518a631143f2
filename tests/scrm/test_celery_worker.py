"""The Celery worker's start-up: what it loaded is frozen out of the garbage collector's reach."""

import gc

from celery.signals import worker_process_init, worker_ready

from scrm.celery import gc_freeze_startup


def test_a_started_worker_freezes_what_it_loaded_so_full_collections_skip_it():
    for signal in (worker_process_init, worker_ready):  # prefork children; the solo and threads pools
        assert gc_freeze_startup in [ref() for _key, ref in signal.receivers]
    try:
        gc_freeze_startup()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
