"""The workflow engine: `task_act` latency and throughput on a 10-node workflow with a branch
and a countersign (维修: start → 受理 → 金额判断 → 总经理审批 (> 500,000) | 主管会签 (2 managers,
all) → 派单 → 上门维修 (fee required) → 自动: 回填说明 → 客户确认 (approval) → end), handlers by
role within the ticket's store / region / tenant.

1. Latency: tickets (half on each branch) driven to the end one act at a time; every task_act
   call timed (p50/p95/max overall and per node), plus the queries one act makes per node.
2. Throughput: N tickets advanced to the end by 8 threads at once (each takes the next ticket
   from a shared queue and drives it to the end): tickets/s, acts/s and act latency under load.
Ticket creation (ticket_intake, which starts the workflow) is not in either figure.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scrm .venv/bin/python bench/bench_workflow.py
    .venv/bin/python bench/bench_workflow.py            # SQLite file (WAL), smaller defaults

On PostgreSQL the notifications' Celery messages go to Redis db 14 (flushed afterwards); on SQLite
to kombu's filesystem queue in a temporary folder. No worker runs. Prints; never asserts on time."""

import argparse
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from decimal import Decimal

REDIS_DB_URL = "redis://127.0.0.1:6379/14"
BIG = Decimal("880000.00")
SMALL = Decimal("12800.00")


def role(name, scope="tenant"):
    return {"rule": "role", "role": name, "scope": scope}


GRAPH = {
    "nodes": [
        {"key": "start", "kind": "start", "name": "开始"},
        {"key": "accept", "kind": "task", "name": "受理", "handler": role("agent", "store"), "time_limit": 30,
         "fields": {"visible": ["order_no"], "editable": ["note"], "required": ["note"]}},
        {"key": "amount", "kind": "condition", "name": "金额判断"},
        {"key": "gm", "kind": "approval", "name": "总经理审批", "handler": role("admin"), "time_limit": 240},
        {"key": "review", "kind": "countersign", "name": "主管会签", "handlers": [role("manager", "region")],
         "mode": "all", "time_limit": 240},
        {"key": "dispatch", "kind": "task", "name": "派单", "handler": role("regional_manager", "region"),
         "backup": role("manager", "region"), "time_limit": 60},
        {"key": "visit", "kind": "task", "name": "上门维修", "handler": role("engineer", "store"), "time_limit": 1440,
         "fields": {"visible": ["order_no", "note"], "editable": ["fee", "note"], "required": ["fee"]},
         "unlock": ["fee"]},
        {"key": "fill", "kind": "auto", "name": "回填说明", "action": "set_fields",
         "params": {"values": {"note": "已上门维修"}}},
        {"key": "confirm", "kind": "approval", "name": "客户确认", "handler": role("agent", "store")},
        {"key": "end", "kind": "end", "name": "结束"},
    ],
    "transitions": [
        {"from": "start", "to": "accept"}, {"from": "accept", "to": "amount"},
        {"from": "amount", "to": "gm",
         "condition": {"all": [{"field": "opportunity.amount", "op": ">", "value": 500000}]}},
        {"from": "amount", "to": "review", "default": True},
        {"from": "gm", "to": "dispatch", "on": "approve"}, {"from": "gm", "to": "accept", "on": "reject"},
        {"from": "review", "to": "dispatch"}, {"from": "dispatch", "to": "visit"}, {"from": "visit", "to": "fill"},
        {"from": "fill", "to": "confirm"}, {"from": "confirm", "to": "end", "on": "approve"},
        {"from": "confirm", "to": "visit", "on": "reject"},
    ],
}
FIELDS = [
    {"key": "order_no", "type": "text", "label": {"zh-hans": "订单号"}, "required": False},
    {"key": "fee", "type": "money", "label": {"zh-hans": "费用"}, "required": False},
    {"key": "note", "type": "textarea", "label": {"zh-hans": "处理说明"}, "required": False},
]
DATA = {"accept": {"note": "已受理"}, "visit": {"fee": "380.00", "note": "更换压缩机"}}


def seed(tenant, stores=4):
    """Region, stores and staff: per store an agent and two engineers; per region two managers
    and a regional manager; one tenant admin (the general manager)."""
    from django.test.utils import override_settings

    from scrm.models import Role
    from scrm.services import region_create, staff_create, store_create
    from tickets.services import category_get_or_create, template_create, template_publish
    from workflow.services import workflow_create, workflow_draft_set

    region = region_create(tenant=tenant, name="华东", code="east")
    shops = [store_create(tenant=tenant, region=region, name=f"上海{i}号店", code=f"sh-{i}") for i in range(stores)]
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        def staff(username, role_, store):
            return staff_create(tenant=tenant, username=username, password="pw-Bench-1", display_name=username,
                                role=role_, home_store=store).user

        for i, shop in enumerate(shops):
            staff(f"agent{i}", Role.AGENT, shop)
            staff(f"eng{i}a", Role.ENGINEER, shop)
            staff(f"eng{i}b", Role.ENGINEER, shop)
        staff("manager1", Role.MANAGER, shops[0])
        staff("manager2", Role.MANAGER, shops[1])
        staff("regional", Role.REGIONAL_MANAGER, shops[0])
        staff("gm", Role.ADMIN, None)
    category = category_get_or_create(tenant=tenant, code="repair", name="维修")
    template = template_create(tenant=tenant, name="维修", slug="repair", category=category, number_prefix="WX",
                               fields=FIELDS)
    template_publish(template=template)
    template.refresh_from_db()
    workflow = workflow_create(template=template, name="维修流程")
    workflow_draft_set(workflow=workflow, graph=GRAPH)
    publish(workflow)
    return template, shops


def publish(workflow):
    from workflow.services import workflow_publish

    return workflow_publish(workflow=workflow)


def make_tickets(tenant, template, shops, n, offset):
    from scrm.models import Customer, Opportunity
    from tickets.services import ticket_intake

    ids = []
    for i in range(offset, offset + n):
        shop = shops[i % len(shops)]
        customer = Customer.objects.create(tenant=tenant, name=f"客户{i}", phone=f"139{i:08d}", store=shop,
                                           region_id=shop.region_id)
        opportunity = Opportunity.objects.create(tenant=tenant, customer=customer, title=f"空调维修{i}",
                                                 amount=BIG if i % 2 else SMALL)
        ids.append(ticket_intake(tenant=tenant, source="phone", template=template, store=shop,
                                 data={"order_no": f"A{i}"}, customer=customer, opportunity=opportunity).pk)
    return ids


def next_act(ticket_id):
    """The next (task, action, data) of the ticket — approve or submit its first open task, as
    its handler — or None when it has ended."""
    from workflow.models import Task, TaskStatus

    task = (Task.objects.filter(ticket_id=ticket_id, status=TaskStatus.OPEN).select_related("assignee")
            .order_by("id").first())
    if task is None:
        return None
    return task, "approve" if task.node in ("gm", "confirm") else "submit", DATA.get(task.node)


def drive(ticket_id, on_act):
    """Act on the ticket until it ends; on_act(node, seconds) after each task_act."""
    from workflow.engine import task_act

    acts = 0
    while (step := next_act(ticket_id)) is not None:
        task, action, data = step
        started = time.perf_counter()
        task_act(task=task, action=action, user=task.assignee, data=data)
        on_act(task.node, time.perf_counter() - started)
        acts += 1
    return acts


def summary(samples):
    ms = sorted(s * 1000 for s in samples)
    from common import percentile

    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(percentile(ms, 95), 2),
            "max_ms": round(ms[-1], 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=None, help="latency pass (default 300 PG, 60 SQLite)")
    parser.add_argument("--throughput-tickets", type=int, default=None,
                        help="throughput pass (default 1,000 PG, 200 SQLite)")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    postgres = bool(os.environ.get("DATABASE_URL"))
    os.environ.setdefault("DEBUG", "false")
    tmp = tempfile.TemporaryDirectory(prefix="scrm-bench-")
    if postgres:
        os.environ.setdefault("REDIS_URL", REDIS_DB_URL)
    else:
        os.environ["SCRM_VAR_DIR"] = tmp.name
    from common import bench_database, db_backend_pid, proc_cpu_seconds, report

    n_latency = args.tickets or (300 if postgres else 60)
    n_throughput = args.throughput_tickets or (1000 if postgres else 200)
    test_name = None if postgres else os.path.join(tmp.name, "bench.sqlite3")
    ok = True
    with bench_database(test_name=test_name) as connection:
        from django.db import connection as default_connection
        from django.test.utils import CaptureQueriesContext

        from scrm.services import tenant_create
        from scrm.tenancy import tenant_scope
        from tickets.models import Status, Ticket
        from workflow.engine import task_act
        from workflow.models import Task, TaskStatus

        tenant = tenant_create(name="美嘉家电售后", slug="bench")
        with tenant_scope(tenant):
            template, shops = seed(tenant)
            # Warm-up and queries per act, by node (two tickets: one per branch).
            queries = defaultdict(list)
            for ticket_id in make_tickets(tenant, template, shops, 2, offset=900000):
                while (step := next_act(ticket_id)) is not None:
                    task, action, data = step
                    with CaptureQueriesContext(connection) as ctx:
                        task_act(task=task, action=action, user=task.assignee, data=data)
                    queries[task.node].append(len(ctx.captured_queries))

            # 1. latency, one act at a time.
            started = time.perf_counter()
            ids = make_tickets(tenant, template, shops, n_latency, offset=0)
            intake_s = time.perf_counter() - started
            samples, by_node = [], defaultdict(list)

            def record(node, seconds):
                samples.append(seconds)
                by_node[node].append(seconds)

            backend = db_backend_pid(connection)
            db_cpu = proc_cpu_seconds(backend) if backend else 0.0
            started, cpu = time.perf_counter(), time.process_time()
            acts = sum(drive(i, record) for i in ids)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            db_cpu = (proc_cpu_seconds(backend) - db_cpu) if backend else None
            closed = Ticket.objects.filter(pk__in=ids, status=Status.CLOSED).count()
            ok &= closed == n_latency
            report("workflow_act_latency", database=connection.vendor, tickets=n_latency, acts=acts,
                   acts_per_ticket=round(acts / n_latency, 2), **summary(samples),
                   mean_ms=round(statistics.fmean(samples) * 1000, 2), acts_per_s=round(acts / elapsed, 1),
                   # CPU per act (including the loop's next-task lookup): steadier than wall time
                   # on a shared machine.
                   python_cpu_ms=round(cpu / acts * 1000, 2),
                   **({"postgres_cpu_ms": round(db_cpu / acts * 1000, 2)} if db_cpu is not None else {}),
                   queries_per_act=round(statistics.fmean(q for qs in queries.values() for q in qs), 1),
                   closed=closed, intake_ms_per_ticket=round(intake_s / n_latency * 1000, 2))
            for node in ("accept", "gm", "review", "dispatch", "visit", "confirm"):
                q = queries.get(node, [0])
                print(f"  {node:9} n={len(by_node[node]):4}  "
                      + ", ".join(f"{k}={v}" for k, v in summary(by_node[node]).items())
                      + f", queries={min(q)}–{max(q)}", flush=True)

            # 2. throughput, N tickets by 8 threads.
            ids = make_tickets(tenant, template, shops, n_throughput, offset=100000)
        work = queue.Queue()
        for i in ids:
            work.put(i)
        lock = threading.Lock()
        loaded, done_acts, errors = [], [0], []
        barrier = threading.Barrier(args.threads)

        def worker():
            local = []
            try:
                with tenant_scope(tenant):
                    barrier.wait(timeout=60)
                    while True:
                        try:
                            ticket_id = work.get_nowait()
                        except queue.Empty:
                            break
                        drive(ticket_id, lambda node, s: local.append(s))
            except Exception as exc:  # reported below
                errors.append(repr(exc))
            finally:
                with lock:
                    loaded.extend(local)
                    done_acts[0] += len(local)
                default_connection.close()

        threads = [threading.Thread(target=worker) for _ in range(args.threads)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        with tenant_scope(tenant):
            closed = Ticket.objects.filter(pk__in=ids, status=Status.CLOSED).count()
            open_left = Task.objects.filter(ticket_id__in=ids, status=TaskStatus.OPEN).count()
        ok &= closed == n_throughput and not errors
        report("workflow_throughput", database=connection.vendor, threads=args.threads, tickets=n_throughput,
               acts=done_acts[0], tickets_per_s=round(n_throughput / elapsed, 1),
               acts_per_s=round(done_acts[0] / elapsed, 1), seconds=round(elapsed, 2),
               **{f"act_{k}": v for k, v in summary(loaded).items()}, closed=closed, open_tasks_left=open_left)
        if errors:
            print(f"{len(errors)} thread(s) failed: {errors[:3]}", file=sys.stderr)
    if postgres and os.environ.get("REDIS_URL") == REDIS_DB_URL:
        import redis

        redis.Redis.from_url(REDIS_DB_URL).flushdb()
    tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
