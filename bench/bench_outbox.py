"""Outbox throughput and event-to-delivery delay against a loopback WeCom stub.

Rows are written by `event_emit` (one transaction per event, as a ticket service does) and
delivered by `notification_deliver` (claim, send through wechatpy's real client to the stub,
record) in worker threads. A queue stands in for the broker: what `event_emit` would enqueue
after its commit goes onto it, so the figures are the outbox's own, without Celery or Redis.

- backlog: N rows written first, then the workers drain them: messages/s.
- steady: events arrive at a steady rate (by default a quarter of the backlog rate: the writer of
  the events shares the database and the interpreter with the workers) while the workers
  deliver: created_at → sent_at p50/p95, the delay a person would see minus the provider's own.

SQLite (default) runs on a throw-away file with WAL, PostgreSQL when DATABASE_URL is set."""

import argparse
import os
import queue
import statistics
import tempfile
import threading
import time

from common import ROOT, bench_database, percentile, report

CORP_ID, SECRET, AGENT_ID = "wwbench0000000001", "bench-wecom-secret", 1000002


def deliver_all(work, workers, stop, tenant_id):
    """Worker threads taking notification ids off `work` until `stop` is set and it is empty."""
    from django.db import connection

    from notifications.services import notification_deliver
    from scrm.tenancy import tenant_scope

    outcomes = []

    def worker():
        try:
            with tenant_scope(tenant_id):
                while not (stop.is_set() and work.empty()):
                    try:
                        notification_id = work.get(timeout=0.05)
                    except queue.Empty:
                        continue
                    outcomes.append(notification_deliver(notification_id=notification_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, name=f"outbox-worker-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def delays_ms(ids):
    from notifications.models import Notification

    rows = Notification.objects.filter(pk__in=ids).values_list("created_at", "sent_at")
    return [(sent - created).total_seconds() * 1000 for created, sent in rows if sent is not None]


def summary(samples):
    return {"p50_ms": round(statistics.median(samples), 1), "p95_ms": round(percentile(samples, 95), 1),
            "max_ms": round(max(samples), 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steady-rows", type=int, default=500)
    parser.add_argument("--arrival-share", type=float, default=0.25,
                        help="steady arrival rate as a share of the backlog throughput")
    args = parser.parse_args()

    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)  # the channels log every send
    from django.db import connections

    settings_dict = connections["default"].settings_dict
    scratch = tempfile.TemporaryDirectory(prefix="bench-outbox-")
    if settings_dict["ENGINE"].endswith("sqlite3"):
        # A file, not the in-memory test database: worker threads need their own connections to it.
        settings_dict["TEST"]["NAME"] = os.path.join(scratch.name, "outbox.sqlite3")
    else:
        settings_dict["TEST"]["NAME"] = f"test_{settings_dict['NAME']}_bench_outbox"

    with bench_database() as connection:
        from django.conf import settings
        from django.db import transaction

        from notifications import services
        from notifications.models import Notification
        from scrm.models import Role, StaffProfile
        from scrm.services import membership_set, tenant_create
        from scrm.tenancy import tenant_scope
        from tests.notifications.stubs import WeComStub

        settings.NOTIFICATIONS_CONSOLE = False  # the real WeCom client, against the stub
        work = queue.Queue()
        services.sweep._enqueue = lambda pairs, force=False: [work.put(pk) for pk, _tenant in pairs]

        from django.contrib.auth import get_user_model

        tenant = tenant_create(name="压测租户", slug="bench-outbox")
        tenant.settings = {"wecom": {"corp_id": CORP_ID, "agent_id": AGENT_ID, "secret": SECRET}}
        tenant.save()
        with tenant_scope(tenant):
            staff = []
            for i in range(20):
                user = get_user_model().objects.create(username=f"bench{i}", first_name=f"工程师{i}")
                membership_set(tenant=tenant, user=user, role=Role.ENGINEER)
                StaffProfile.objects.create(tenant=tenant, user=user, display_name=user.first_name,
                                            wecom_userid=f"bench.{i}")
                staff.append(user)

            def emit(i):
                with transaction.atomic():
                    services.event_emit(tenant=tenant, event="parts_low_stock", users=[staff[i % len(staff)]],
                                        context={"part_name": f"压缩机 QD-{i}", "stock": "2"}, occurrence=str(i))

            with WeComStub(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID) as stub, stub.installed():
                # backlog: write N, then drain with the workers
                for i in range(args.rows):
                    emit(i)
                backlog_ids = list(Notification.objects.filter(channel="wecom").values_list("pk", flat=True))
                stop = threading.Event()
                started = time.perf_counter()
                threads, outcomes = deliver_all(work, args.workers, stop, tenant.pk)
                stop.set()
                for thread in threads:
                    thread.join()
                elapsed = time.perf_counter() - started
                sent = Notification.objects.filter(pk__in=backlog_ids, status="sent").count()
                rate = args.rows / elapsed
                report("outbox_backlog", database=connection.vendor, rows=args.rows, workers=args.workers,
                       sent=sent, not_claimed=outcomes.count(None), stub_sends=len(stub.calls(WeComStub.SEND_PATH)),
                       msgs_per_s=round(rate, 1),
                       drain_s=round(elapsed, 2))

                # steady: events arrive at a fraction of that rate while the workers deliver
                arrival = rate * args.arrival_share
                sends_before = len(stub.calls(WeComStub.SEND_PATH))
                stop = threading.Event()
                threads, _outcomes = deliver_all(work, args.workers, stop, tenant.pk)
                started = time.perf_counter()
                for n in range(args.steady_rows):
                    emit(args.rows + n)
                    pause = started + (n + 1) / arrival - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                stop.set()
                for thread in threads:
                    thread.join()
                steady_ids = list(Notification.objects.filter(channel="wecom").exclude(pk__in=backlog_ids)
                                  .values_list("pk", flat=True))
                delays = delays_ms(steady_ids)
                report("outbox_steady", database=connection.vendor, rows=args.steady_rows, workers=args.workers,
                       arrivals_per_s=round(arrival, 1), sent=len(delays),
                       stub_sends=len(stub.calls(WeComStub.SEND_PATH)) - sends_before, **summary(delays))
    scratch.cleanup()


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
