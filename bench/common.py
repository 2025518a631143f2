"""Shared set-up for benchmarks: Django on a throw-away database (SQLite by default, or the
database in DATABASE_URL, where Django's test-database machinery makes a database of its own)."""

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
def bench_database(test_name=None, keep=False):
    """A fresh database for the bench, dropped afterwards. On PostgreSQL it is `test_name`
    (default `bench_<pid>`, so a bench never collides with the integration suite's `test_scrm`
    or with another bench); on SQLite an in-memory database unless `test_name` names a file.
    With keep=True an existing database of that name is reused and left in place."""
    import django

    django.setup()
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    if test_name or connection.vendor == "postgresql":
        connection.settings_dict.setdefault("TEST", {})
        connection.settings_dict["TEST"]["NAME"] = test_name or f"bench_{os.getpid()}"
    connection.creation.create_test_db(verbosity=0, autoclobber=not keep, keepdb=keep, serialize=False)
    try:
        yield connection
    finally:
        if keep:
            connection.close()
            connection.settings_dict["NAME"] = old_name
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def proc_cpu_seconds(pid):
    """User + system CPU seconds a process has used (Linux /proc), e.g. a PostgreSQL backend's:
    on a shared machine CPU per call is steadier than wall time."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def db_backend_pid(connection):
    """The PostgreSQL backend serving this connection (None on SQLite)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


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
