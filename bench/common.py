"""Shared set-up for benchmarks: Django on a throw-away database (SQLite by default, or the
database in DATABASE_URL, where Django's test-database machinery makes `test_<name>`)."""

import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")


@contextmanager
def bench_database():
    import django

    django.setup()
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield connection
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def percentile(samples, pct):
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def report(name, **figures):
    print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


class Timer:
    def __init__(self):
        self.samples = []

    @contextmanager
    def measure(self):
        start = time.perf_counter()
        yield
        self.samples.append(time.perf_counter() - start)

    def summary_ms(self):
        ms = [s * 1000 for s in self.samples]
        return {
            "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(percentile(ms, 95), 2),
            "max_ms": round(max(ms), 2),
        }
