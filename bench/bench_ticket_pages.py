"""The staff ticket list and the ticket page with 1,000,000 tickets in one tenant (PostgreSQL):
p50/p95 latency and the queries per page, through Django's test client signed in as an agent,
for page sizes 25 and 100. Targets: p95 ≤ 50 ms and ≤ 12 queries, whatever the page size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scrm .venv/bin/python bench/bench_ticket_pages.py
    … bench_ticket_pages.py --keep        # keep (and on the next run reuse) the generated database
    … bench_ticket_pages.py --keep --explain   # also EXPLAIN ANALYZE the list's queries

The rows are generated in SQL (INSERT … SELECT FROM generate_series, about a minute): 200,000
customers, three published templates (presets), 50 stores in 5 regions, 20 agents as assignees,
statuses and priorities spread, per-day numbers like TS-20260101-0042, unique tracking tokens;
the tickets the bench opens also get a timeline (created, assigned, status, comments, a change
with old → new values), an attachment, tags and outbox rows. A second tenant holds 20,000
tickets, so every query has to pick its tenant. Without DATABASE_URL it runs on SQLite with
--tickets 20000 (the figures are then only a smoke test)."""

import argparse
import os
import random
import statistics
import sys
import time

os.environ.setdefault("DEBUG", "false")  # as in production: cached templates, no query log

from common import bench_database, percentile, report

KEEP_NAME = "bench_pages"
SAMPLE = 400  # tickets opened (with a timeline) and numbers searched
STATUS_SPREAD = [("new", 10), ("in_progress", 15), ("waiting", 5), ("resolved", 20), ("closed", 45), ("cancelled", 5)]


def generate(connection, tenant, other, *, tickets, customers, stdout):
    """Fill the database (PostgreSQL: SQL generate_series; SQLite: the same rows in Python)."""
    from django.contrib.auth import get_user_model
    from django.test import override_settings

    from scrm.models import Role, Store
    from scrm.services import region_create, staff_create, store_create
    from scrm.tenancy import tenant_scope
    from tickets.models import TicketTemplate
    from tickets.services import template_from_preset

    started = time.perf_counter()
    templates = {}
    for t, n_tickets, n_customers in ((tenant, tickets, customers), (other, max(1, tickets // 50), customers // 20)):
        with tenant_scope(t):
            for r in range(5):
                region = region_create(tenant=t, name=f"大区{r}", code=f"r{r}")
                for s in range(10):
                    store_create(tenant=t, region=region, name=f"门店{r}-{s}", code=f"s{r}-{s}")
            for slug in ("canyin_tousu", "jiadian_anzhuang", "4s_baoyang"):
                template_from_preset(tenant=t, preset_slug=slug)
            with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
                staff = [
                    staff_create(tenant=t, username=f"{t.slug}_agent{i}", password="bench-Pass-123",
                                 display_name=f"客服{i}", role=Role.AGENT).user_id
                    for i in range(20)
                ]
            templates[t.pk] = list(
                TicketTemplate.objects.select_related("current_version").order_by("id")
                .values_list("id", "current_version_id", "category_id", "number_prefix", "name")
            )
            stores = list(Store.objects.order_by("id").values_list("id", "region_id"))
        _generate_rows(connection, t, templates[t.pk], stores, staff, tickets=n_tickets, customers=n_customers)
        stdout.write(f"  generated {n_tickets} tickets for {t.slug} ({time.perf_counter() - started:.0f}s)\n")
    agent = get_user_model().objects.get(username=f"{tenant.slug}_agent0")
    _sample_timelines(connection, tenant, agent)


def vacuum(connection):
    """Fresh statistics and visibility maps (index-only scans), as autovacuum would leave them."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in ("tickets_ticket", "scrm_customer", "tickets_timelineevent", "notifications_notification",
                          "tickets_attachment"):
                cursor.execute(f"VACUUM (ANALYZE) {table}")


def _generate_rows(connection, tenant, templates, stores, staff, *, tickets, customers):
    postgres = connection.vendor == "postgresql"
    params = {
        "tenant": tenant.pk, "n": tickets, "ncust": customers, "nstores": len(stores), "nstaff": len(staff),
        "staff": staff, "store_ids": [s[0] for s in stores], "region_ids": [s[1] for s in stores],
        "tpl_ids": [t[0] for t in templates], "ver_ids": [t[1] for t in templates],
        "cat_ids": [t[2] for t in templates], "prefixes": [t[3] for t in templates],
        "tpl_names": [t[4] for t in templates], "phone_base": 13900000000 + tenant.pk * 1000000,
    }
    if not postgres:
        return _generate_rows_python(connection, tenant, params)
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO scrm_customer (tenant_id, name, phone, email, wecom_external_userid, wechat_openid, tier,
                                       region_id, store_id, owner_id, address, note, source, created_at, updated_at)
            SELECT %(tenant)s, '顾客' || i, (%(phone_base)s + i)::text, '', '', '',
                   CASE WHEN i %% 20 = 0 THEN 'vip' ELSE 'normal' END,
                   (%(region_ids)s::bigint[])[1 + i %% %(nstores)s], (%(store_ids)s::bigint[])[1 + i %% %(nstores)s],
                   NULL, '', '', '', now() - i * interval '1 minute', now()
            FROM generate_series(0::bigint, %(ncust)s - 1) AS i
        """, params)
        cursor.execute("SELECT min(id) FROM scrm_customer WHERE tenant_id = %s", [tenant.pk])
        params["cust0"] = cursor.fetchone()[0]
        cursor.execute("""
            INSERT INTO tickets_ticket (
                tenant_id, number, template_id, template_version_id, category_id, title, description, priority,
                status, source, customer_id, opportunity_id, region_id, store_id, assignee_id, created_by_id,
                data, raw_payload, parent_id, merged_into_id, tracking_token, created_at, updated_at,
                resolved_at, closed_at)
            SELECT %(tenant)s,
                   (%(prefixes)s::text[])[1 + k] || '-' || to_char(local_day, 'YYYYMMDD') || '-'
                       || lpad((row_number() OVER (PARTITION BY k, local_day ORDER BY i DESC))::text, 4, '0'),
                   (%(tpl_ids)s::bigint[])[1 + k], (%(ver_ids)s::bigint[])[1 + k], (%(cat_ids)s::bigint[])[1 + k],
                   (%(tpl_names)s::text[])[1 + k] || ' · 顾客' || c,
                   (ARRAY['菜品里有异物，要求退款', '服务员态度差', '等位时间太长', '空调不制冷需要上门维修',
                          '预约下周二保养', '发票开错了请重开'])[1 + i %% 6],
                   CASE WHEN p < 10 THEN 'low' WHEN p < 75 THEN 'normal' WHEN p < 93 THEN 'high' ELSE 'urgent' END,
                   st,
                   (ARRAY['web', 'api', 'phone', 'wecom', 'staff', 'email'])[1 + i %% 6],
                   %(cust0)s + c, NULL,
                   (%(region_ids)s::bigint[])[1 + i %% %(nstores)s], (%(store_ids)s::bigint[])[1 + i %% %(nstores)s],
                   CASE WHEN i %% 10 < 7 THEN (%(staff)s::bigint[])[1 + i %% %(nstaff)s] END, NULL,
                   CASE WHEN k = 0 THEN jsonb_build_object(
                       'store', (%(store_ids)s::bigint[])[1 + i %% %(nstores)s],
                       'dined_at', to_char(created_at - interval '2 hours', 'YYYY-MM-DD"T"HH24:MI:SS"+08:00"'),
                       'order_no', 'WD' || lpad(i::text, 10, '0'),
                       'complaint_type', (ARRAY['quality', 'service', 'hygiene', 'waiting', 'other'])[1 + i %% 5],
                       'description', '菜品里有异物，要求门店给个说法', 'contact_name', '顾客' || c,
                       'contact_phone', (%(phone_base)s + c)::text, 'expectation', 'apology')
                   ELSE '{}'::jsonb END,
                   '{}'::jsonb, NULL, NULL,
                   lower(to_hex(%(tenant)s)) || '-' || md5('bench-' || %(tenant)s || '-' || i),
                   created_at, created_at + interval '3 hours',
                   CASE WHEN st IN ('resolved', 'closed') THEN created_at + interval '1 day' END,
                   CASE WHEN st IN ('closed', 'cancelled') THEN created_at + interval '2 days' END
            FROM (
                SELECT i, i %% 3 AS k, (i * 7919) %% %(ncust)s AS c, (i * 17) %% 100 AS p,
                       created_at, (created_at AT TIME ZONE 'Asia/Shanghai')::date AS local_day,
                       CASE WHEN (i * 31) %% 100 < 10 THEN 'new' WHEN (i * 31) %% 100 < 25 THEN 'in_progress'
                            WHEN (i * 31) %% 100 < 30 THEN 'waiting' WHEN (i * 31) %% 100 < 50 THEN 'resolved'
                            WHEN (i * 31) %% 100 < 95 THEN 'closed' ELSE 'cancelled' END AS st
                FROM (SELECT i, now() - i * interval '29 seconds' AS created_at
                      FROM generate_series(1::bigint, %(n)s) AS i) AS g
            ) AS t
        """, params)


def _generate_rows_python(connection, tenant, params):
    """SQLite: the same shape of rows, inserted with executemany (small sizes only)."""
    import datetime
    import hashlib

    from django.utils import timezone

    now = timezone.now()
    with connection.cursor() as cursor:
        rows = [
            (tenant.pk, f"顾客{i}", str(params["phone_base"] + i), "", "", "", "vip" if i % 20 == 0 else "normal",
             params["region_ids"][i % params["nstores"]], params["store_ids"][i % params["nstores"]], "", "", "",
             now - datetime.timedelta(minutes=i), now)
            for i in range(params["ncust"])
        ]
        cursor.executemany(
            "INSERT INTO scrm_customer (tenant_id, name, phone, email, wecom_external_userid, wechat_openid, tier,"
            " region_id, store_id, address, note, source, created_at, updated_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            rows,
        )
        cursor.execute("SELECT min(id) FROM scrm_customer WHERE tenant_id = %s", [tenant.pk])
        cust0 = cursor.fetchone()[0]
        per_day = {}
        rows = []
        for i in range(params["n"], 0, -1):
            k, c, p = i % 3, (i * 7919) % params["ncust"], (i * 17) % 100
            created = now - datetime.timedelta(seconds=29 * i)
            day = timezone.localtime(created).date()
            per_day[(k, day)] = per_day.get((k, day), 0) + 1
            st = _status_of(i)
            rows.append((
                tenant.pk, f"{params['prefixes'][k]}-{day:%Y%m%d}-{per_day[(k, day)]:04d}", params["tpl_ids"][k],
                params["ver_ids"][k], params["cat_ids"][k], f"{params['tpl_names'][k]} · 顾客{c}", "菜品里有异物",
                "low" if p < 10 else "normal" if p < 75 else "high" if p < 93 else "urgent", st,
                ["web", "api", "phone", "wecom", "staff", "email"][i % 6], cust0 + c,
                params["region_ids"][i % params["nstores"]], params["store_ids"][i % params["nstores"]],
                params["staff"][i % params["nstaff"]] if i % 10 < 7 else None, "{}", "{}",
                f"{tenant.pk:x}-" + hashlib.md5(f"bench-{tenant.pk}-{i}".encode()).hexdigest(), created, created,
            ))
        cursor.executemany(
            "INSERT INTO tickets_ticket (tenant_id, number, template_id, template_version_id, category_id, title,"
            " description, priority, status, source, customer_id, region_id, store_id, assignee_id, data,"
            " raw_payload, tracking_token, created_at, updated_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            rows,
        )


def _status_of(i):
    r = (i * 31) % 100
    for status, share in STATUS_SPREAD:
        if r < share:
            return status
        r -= share
    return "cancelled"


def _sample_ids(connection, tenant):
    """The tickets the bench opens: spread over the whole range, newest to oldest."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM tickets_ticket WHERE tenant_id = %s", [tenant.pk])
        low, high = cursor.fetchone()
    step = max(1, (high - low) // SAMPLE)
    return list(range(low, high + 1, step))[:SAMPLE]


def _sample_timelines(connection, tenant, agent):
    """A timeline for every sample ticket, written through the services (what the page shows)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from scrm.models import Tag
    from scrm.tenancy import tenant_scope
    from tickets.models import Ticket, TimelineEvent
    from tickets.services import ticket_comment_add, ticket_data_update
    from tickets.services.core import timeline_event_add

    with tenant_scope(tenant):
        tags = [Tag.objects.create(tenant=tenant, name=name) for name in ("退款", "食品安全", "服务")]
        for n, ticket in enumerate(Ticket.objects.filter(pk__in=_sample_ids(connection, tenant)).order_by("id")):
            timeline_event_add(ticket=ticket, kind="created", actor_label=ticket.title[-6:],
                               message="Ticket created via Web form.", is_public=True)
            timeline_event_add(ticket=ticket, kind="assigned", actor=agent, changes=[
                {"field": "assignee", "label": "Assignee", "old": "—", "new": "客服0"}])
            ticket_comment_add(ticket=ticket, body="已联系顾客，约好明天回访。", actor=agent, is_public=False)
            ticket_comment_add(ticket=ticket, body="您好，门店店长会在 24 小时内联系您。", actor=agent, is_public=True,
                               files=[SimpleUploadedFile("小票.jpg", b"\xff\xd8\xff" + b"0" * 2000,
                                                         content_type="image/jpeg")] if n % 4 == 0 else ())
            if ticket.template.slug == "canyin_tousu" and ticket.data:
                ticket_data_update(ticket=ticket, actor=agent, data={"order_no": f"WD{ticket.pk:010d}X"})
            timeline_event_add(ticket=ticket, kind="status", actor=agent, is_public=True, changes=[
                {"field": "status", "label": "Status", "old": "New", "new": ticket.get_status_display()}])
            ticket.tags.add(*tags[: 1 + n % 3])
        assert TimelineEvent.objects.count() >= SAMPLE


def measure(client, connection, urls):
    from django.test.utils import CaptureQueriesContext

    times, queries = [], []
    for url in urls:
        connection.queries_log.clear()  # a full log (9,000 entries) would hide the new ones
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
        queries.append(len(ctx.captured_queries))
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1), "queries": max(queries)}


def explain(connection, tenant, agent, numbers):
    """EXPLAIN ANALYZE of the list's queries (first page, status filter, search, page 2, count)."""
    from scrm.tenancy import tenant_scope
    from tickets.selectors import ticket_list

    with tenant_scope(tenant):
        cases = [
            ("first page", ticket_list(user=agent)[:25]),
            ("status=in_progress", ticket_list(user=agent, status="in_progress")[:25]),
            ("search by number", ticket_list(user=agent, search=numbers[0])[:25]),
            ("page 2", ticket_list(user=agent)[25:50]),
            ("capped count", ticket_list(user=agent).order_by().values("pk")[:10001]),
            ("capped count, status", ticket_list(user=agent, status="in_progress").order_by().values("pk")[:10001]),
            ("capped count, search", ticket_list(user=agent, search=numbers[0]).order_by().values("pk")[:10001]),
        ]
        for name, qs in cases:
            print(f"--- {name}\n{qs.explain(analyze=True, buffers=True)}\n", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=None, help="default 1,000,000 (PostgreSQL), 20,000 (SQLite)")
    parser.add_argument("--requests", type=int, default=200, help="requests per page and page size")
    parser.add_argument("--keep", action="store_true", help="keep the database (--db-name) and reuse it next time")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the list's queries")
    parser.add_argument("--db-name", default=KEEP_NAME, help="the kept database's name (with --keep)")
    args = parser.parse_args()
    postgres = bool(os.environ.get("DATABASE_URL"))
    tickets = args.tickets or (1_000_000 if postgres else 20_000)
    name = args.db_name if args.keep else None
    if name and not postgres:
        name = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "var", "bench_pages.sqlite3")
    with bench_database(test_name=name, keep=args.keep) as connection:
        from django.contrib.auth import get_user_model
        from django.db import transaction
        from django.test import Client

        from scrm.models import Tenant
        from scrm.services import tenant_create
        from scrm.tenancy import tenant_scope
        from tickets.models import Ticket

        tenant = Tenant.objects.filter(slug="pages").first()
        if tenant is None:
            print(f"generating {tickets} tickets (once; --keep keeps them for the next run)", flush=True)
            started = time.perf_counter()
            with transaction.atomic():  # all or nothing, so a kept database is always complete
                tenant = tenant_create(name="味道江南（压测）", slug="pages")
                other = tenant_create(name="另一个租户", slug="other")
                generate(connection, tenant, other, tickets=tickets, customers=max(100, tickets // 5),
                         stdout=sys.stdout)
            vacuum(connection)
            print(f"  generated in {time.perf_counter() - started:.0f}s", flush=True)
        agent = get_user_model().objects.get(username="pages_agent0")
        with tenant_scope(tenant):
            total = Ticket.objects.count()
            sample = list(Ticket.objects.filter(pk__in=_sample_ids(connection, tenant)).values_list("pk", "number"))
        rng = random.Random(7)
        numbers = [number for _pk, number in sample]
        if args.explain:
            explain(connection, tenant, agent, numbers)
        client = Client()
        client.force_login(agent)
        n = args.requests
        for url in ("/tickets/", "/tickets/?status=in_progress", f"/tickets/{sample[0][0]}/"):  # warm-up
            for _ in range(5):
                client.get(url)
        results = {}
        for size in (25, 100):
            pages = {
                "list": ["/tickets/"] * n,
                "list_status": [f"/tickets/?status={rng.choice(['new', 'in_progress', 'waiting', 'closed'])}"
                                for _ in range(n)],
                "list_search_number": [f"/tickets/?q={rng.choice(numbers)}" for _ in range(n)],
                "list_page2": ["/tickets/?page=2"] * n,
            }
            for page, urls in pages.items():
                sep = "&" if "?" in urls[0] else "?"
                results[(page, size)] = measure(client, connection, [f"{u}{sep}per_page={size}" for u in urls])
                report(f"ticket_pages {page}", tickets=total, per_page=size, **results[(page, size)])
        detail = measure(client, connection, [f"/tickets/{rng.choice(sample)[0]}/" for _ in range(n)])
        report("ticket_pages detail", tickets=total, timeline="6-7 events", **detail)
        worst_p95 = max([r["p95_ms"] for r in results.values()] + [detail["p95_ms"]])
        worst_q = max([r["queries"] for r in results.values()] + [detail["queries"]])
        report("ticket_pages summary", database=connection.vendor, tickets=total, worst_p95_ms=worst_p95,
               worst_queries=worst_q, p95_target_met=worst_p95 <= 50, queries_target_met=worst_q <= 12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
