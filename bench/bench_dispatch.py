"""Smart dispatch (workflow/dispatch_rule.py): the time and queries of one dispatch decision with
2,000 engineers in 200 stores (20 regions) and 100,000 open tasks (plus 20,000 completed in the last
three days, whose first actions the speed factor reads). Three cases: the ticket's store has someone (the usual
case), every local engineer is full so the region is borrowed from (跨店支援), and nobody anywhere
has the skill, so the walk reaches the whole company (all 2,000 rows read) and ends in the pool.

    .venv/bin/python bench/bench_dispatch.py                 # SQLite in memory
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scrm .venv/bin/python bench/bench_dispatch.py

The decision is `handlers_choose(rule, ctx)` — what the engine calls on entering the node —
without the task write. Prints; never asserts on time."""

import argparse
import datetime
import random
import time
from decimal import Decimal

from common import Timer, bench_database, db_backend_pid, proc_cpu_seconds, report


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--staff", type=int, default=2000)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--open-tasks", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--show-sql", action="store_true", help="print the slowest statements of one decision")
    parser.add_argument("--keep", metavar="DB", help="build in (or reuse) the database DB and leave it in place")
    args = parser.parse_args()
    with bench_database(test_name=args.keep, keep=bool(args.keep)):
        run(args)


def run(args):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from scrm.models import Skill, Store, Tenant
    from scrm.tenancy import tenant_scope
    from tickets.models import TicketTemplate
    from tickets.services import ticket_intake
    from workflow.dispatch_speed import speed_recount
    from workflow.models import Task, TaskStatus, Workload
    from workflow.routing import HandlerContext, handlers_choose

    rng = random.Random(15)
    tenant = Tenant.objects.filter(slug="dispatch-bench").first()
    if tenant is None:
        tenant = build(args, rng)
    else:
        print("reusing the data built by an earlier --keep run")
    with tenant_scope(tenant):
        stores = list(Store.objects.order_by("id"))
        skills = list(Skill.objects.order_by("id"))
        template = TicketTemplate.objects.get(slug="repair")
        full_store = stores[1]
        if not Workload.objects.filter(speed_at__isnull=False).exists():
            # The engine keeps the median per first action; the generated tasks bypassed it.
            report("speed roll-up", people=speed_recount())
        tickets = {
            "store": [ticket_intake(tenant=tenant, source="phone", template=template, data={}, store=s, region=s.region)
                      for s in rng.sample(stores[2:], 30)],
            "overflow_region": [ticket_intake(tenant=tenant, source="phone", template=template, data={},
                                              store=full_store, region=full_store.region) for _ in range(5)],
        }
        tickets["nobody_tenant"] = tickets["store"][:10]
        base = {"rule": "dispatch", "role": "engineer", "overflow": ["store", "region", "nearby", "tenant"],
                "radius_km": 50, "on_duty_only": True, "under_capacity": True, "w_distance": 40, "w_load": 40,
                "w_speed": 20, "round_robin": True}
        rules = {"store": {**base, "skills": [skills[0].pk]}, "overflow_region": {**base, "skills": [skills[0].pk]},
                 "nobody_tenant": {**base, "skills": [skills[4].pk]}}
        report("dispatch setup", staff=args.staff, stores=args.stores, open_tasks=Task.objects.filter(
            status=TaskStatus.OPEN).count(), db=connection.vendor)
        pid = db_backend_pid(connection)
        for case, rule in rules.items():
            timer = Timer()
            cpu, db_cpu = time.process_time(), proc_cpu_seconds(pid) if pid else 0.0
            queries = set()
            picked = 0
            for i in range(args.calls if case != "nobody_tenant" else max(20, args.calls // 10)):
                t = tickets[case][i % len(tickets[case])]
                connection.queries_log.clear()
                with CaptureQueriesContext(connection) as ctx, timer.measure():
                    choice = handlers_choose(rule, HandlerContext(ticket=t))
                queries.add(len(ctx.captured_queries))
                if args.show_sql and i == 0:
                    for q in sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))[:4]:
                        print(f"  {q['time']}s {q['sql'][:600]}")
                picked += bool(choice.users)
            n = len(timer.samples)
            cpu_ms = {"python_cpu_ms": round((time.process_time() - cpu) * 1000 / n, 2)}
            if pid:
                cpu_ms["db_cpu_ms"] = round((proc_cpu_seconds(pid) - db_cpu) * 1000 / n, 2)
            report(f"dispatch decision [{case}]", calls=n, picked=picked,
                   queries="/".join(str(q) for q in sorted(queries)), **timer.summary_ms(), **cpu_ms)


def build(args, rng):
    """The tenant, its stores, staff, skills and tasks; the Workload roll-up as the engine keeps it."""
    from django.contrib.auth import get_user_model
    from django.db.models import F
    from django.utils import timezone

    from scrm.models import Membership, Region, Role, Skill, StaffProfile, Store, Tenant
    from scrm.tenancy import tenant_scope
    from tests.factories import published_template
    from tickets.services import ticket_intake
    from workflow.models import Run, Task, TaskStatus, Token, Workflow, WorkflowVersion, Workload

    tenant = Tenant.objects.create(name="派单压测", slug="dispatch-bench")
    with tenant_scope(tenant):
        regions = Region.objects.bulk_create([Region(tenant=tenant, name=f"区域{i}", code=f"r{i}")
                                              for i in range(20)])
        stores = Store.objects.bulk_create([
            Store(tenant=tenant, region=regions[i % 20], name=f"门店{i}", code=f"s{i}",
                  latitude=Decimal(f"{22 + rng.random() * 18:.6f}"),
                  longitude=Decimal(f"{100 + rng.random() * 21:.6f}"))
            for i in range(args.stores)])
        # One by one: Skill is cached configuration (scrm.config_cache), which a bulk write would bypass.
        skills = [Skill.objects.create(tenant=tenant, name=n)
                  for n in ("空调维修", "冰箱维修", "洗衣机维修", "热水器安装", "无人会")]
        User = get_user_model()
        users = User.objects.bulk_create([User(username=f"eng{i}", first_name=f"工程师{i}") for i in range(args.staff)])
        Membership.objects.bulk_create([Membership(tenant=tenant, user=u, role=Role.ENGINEER) for u in users])
        profiles = StaffProfile.objects.bulk_create([
            StaffProfile(tenant=tenant, user=u, display_name=u.first_name, home_store=stores[i % args.stores],
                         on_duty=rng.random() > 0.1, max_open_tickets=80) for i, u in enumerate(users)])
        through = StaffProfile.skills.through
        through.objects.bulk_create([through(staffprofile_id=p.pk, skill_id=s.pk) for p in profiles
                                     for s in rng.sample(skills[:4], 2)])
        template = published_template(tenant, name="报修", slug="repair", prefix="BX",
                                      fields=[{"key": "note", "type": "text", "label": {"zh-hans": "说明"}}])
        ticket = ticket_intake(tenant=tenant, source="phone", template=template, data={}, store=stores[0],
                               region=stores[0].region)
        workflow = Workflow.objects.create(tenant=tenant, template=template, name="压测")
        version = WorkflowVersion.objects.create(tenant=tenant, workflow=workflow, number=1, graph={})
        run_ = Run.objects.create(tenant=tenant, ticket=ticket, version=version)
        token = Token.objects.create(tenant=tenant, run=run_, node="fix")
        load = {}
        now = timezone.now()
        rows = []
        for _ in range(args.open_tasks):
            user = users[rng.randrange(args.staff)]
            load[user.pk] = load.get(user.pk, 0) + 1
            rows.append(Task(tenant=tenant, run=run_, ticket=ticket, token=token, node="fix", node_name="维修",
                             assignee=user))
        for _ in range(args.open_tasks // 5):
            user = users[rng.randrange(args.staff)]
            acted = now - datetime.timedelta(minutes=rng.randint(30, 4000))
            rows.append(Task(tenant=tenant, run=run_, ticket=ticket, token=token, node="fix", node_name="维修",
                             assignee=user, status=TaskStatus.DONE, completed_by=user,
                             completed_at=acted + datetime.timedelta(minutes=20), first_action_by=user,
                             first_action_at=acted))
        Task.objects.bulk_create(rows, batch_size=5000)
        # created_at is set on insert: the completed tasks were first acted on 10, 30 or 70 minutes after opening.
        done = [t.pk for t in rows if t.status == TaskStatus.DONE]
        for i, minutes in enumerate((10, 30, 70)):
            Task.objects.filter(pk__in=done[i::3]).update(created_at=F("first_action_at") - datetime.timedelta(
                minutes=minutes))
        Workload.objects.bulk_create([Workload(tenant=tenant, user_id=u, open_tasks=n) for u, n in load.items()])
        # Full engineers in store 1, so its tickets overflow to the region.
        full_store = stores[1]
        for p in StaffProfile.objects.filter(home_store=full_store):
            Workload.objects.filter(user_id=p.user_id).update(open_tasks=500)
    return tenant


if __name__ == "__main__":
    main()
