"""Tickets through HTTP under gunicorn: the public web form `/s/<tenant>/<template>/` (a browser's
multipart POST with the CSRF token) and the REST API `POST /api/v1/tickets/` (JSON, API key,
Idempotency-Key), each driven by 8 concurrent clients over loopback for a fixed count. Each
channel is measured on the 餐饮投诉 template running its preset workflow (`form`, `api`: what
every demo template does, so what users take) and on the same template without a workflow
(`form_plain`, `api_plain`); `form_dispatch` (asked for with --parts) runs the preset workflow with
its first node dispatched by the smart-dispatch rule among agents in every store. Prints
tickets/s and p50/p95 latency per part, the ratio of the workflow path to the plain one, then
CHECKS in the database that every answered request made exactly one ticket with its number, its
created event and an outbox row, and one workflow run per ticket of the workflow templates.

    .venv/bin/python bench/bench_http_intake.py                       # 2 sync workers, 3,000 per part
    .venv/bin/python bench/bench_http_intake.py --worker-class gthread --threads 4
    .venv/bin/python bench/bench_http_intake.py --matrix              # sync vs gthread, 2 workers each
    .venv/bin/python bench/bench_http_intake.py --parts form,form_plain   # the public form only
    .venv/bin/python bench/bench_http_intake.py --parts form_plain,form_dispatch,form   # with smart dispatch

It creates and migrates a throw-away PostgreSQL database (`bench_http_<pid>` on the server of
DATABASE_URL, default postgres://postgres@127.0.0.1:5432/scrm), collects static files into a
temporary folder, seeds one tenant with the 餐饮投诉 preset as a public template, four
classification rules and an API key, and starts gunicorn on 127.0.0.1:<free port> with the
production settings (SCRM_ENV=production, DEBUG off, SECURE_SSL_REDIRECT=false because there is
no TLS proxy in front, Redis db 14 (or BENCH_REDIS_URL) as cache and broker; no Celery worker,
so the outbox rows stay pending). Everything is torn down at the end: gunicorn stopped, database
dropped, that Redis db flushed."""

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

from common import percentile, proc_cpu_seconds  # bench/ is the script's folder

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Flushed at the end: give a run beside another one (another worktree's) a db of its own.
REDIS_DB_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
HOST = "127.0.0.1"


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- the throw-away database ----------------------------------------------------------------

def admin_sql(base_url, sql):
    import psycopg2

    parts = urllib.parse.urlparse(base_url)
    conn = psycopg2.connect(host=parts.hostname, port=parts.port or 5432, user=parts.username,
                            password=parts.password, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


class CpuMeter:
    """CPU seconds used meanwhile by the gunicorn workers, the database's backends, Redis and this
    load client: on a shared 2-core machine the CPU each ticket costs is steadier than wall time.
    Backends are sampled every half second, so one that closes (CONN_MAX_AGE) still counts."""

    def __init__(self, server, base_url, name):
        import psycopg2

        self.server, self.name = server, name
        parts = urllib.parse.urlparse(base_url)
        self.admin = psycopg2.connect(host=parts.hostname, port=parts.port or 5432, user=parts.username,
                                      password=parts.password, dbname="postgres")
        self.admin.autocommit = True
        found = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True).stdout.split()
        self.redis_pid = int(found[0]) if found else 0

    def _sample(self):
        with self.admin.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.name])
            for (pid,) in cur.fetchall():
                self.db_first.setdefault(pid, 0.0)  # born during the run: all of its CPU counts
                self.db_last[pid] = max(self.db_last.get(pid, 0.0), proc_cpu_seconds(pid))

    def _loop(self):
        while not self.stopped.wait(0.5):
            self._sample()

    def start(self):
        with self.admin.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.name])
            self.db_first = {pid: proc_cpu_seconds(pid) for (pid,) in cur.fetchall()}
        self.db_last = dict(self.db_first)
        self.web_first = {p: proc_cpu_seconds(p) for p in children(self.server.proc.pid)}
        self.redis_first = proc_cpu_seconds(self.redis_pid) if self.redis_pid else 0.0
        self.client_first = time.process_time()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def stop(self, n):
        self.stopped.set()
        self.thread.join()
        self._sample()
        web = sum(proc_cpu_seconds(p) - self.web_first.get(p, 0.0) for p in children(self.server.proc.pid))
        db = sum(self.db_last[p] - self.db_first.get(p, 0.0) for p in self.db_last)
        redis_cpu = (proc_cpu_seconds(self.redis_pid) - self.redis_first) if self.redis_pid else 0.0
        client = time.process_time() - self.client_first
        n = max(n, 1)
        return {"web_cpu_ms": round(web / n * 1000, 2), "db_cpu_ms": round(db / n * 1000, 2),
                "redis_cpu_ms": round(redis_cpu / n * 1000, 2), "client_cpu_ms": round(client / n * 1000, 2)}

    def close(self):
        self.admin.close()


def db_url(base_url, name):
    return urllib.parse.urlparse(base_url)._replace(path=f"/{name}").geturl()


def setup_site(env):
    """Migrate, collect static files and seed (in a child process with the bench's environment).
    Prints the JSON the clients need."""
    code = r"""
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
call_command("collectstatic", verbosity=0, interactive=False)
import sys; sys.path.insert(0, "bench")
from intake_seed import seed_dispatch_template, seed_intake, seed_workflow_template
from scrm.services import tenant_create
from scrm.tenancy import tenant_scope
from tickets.services import api_key_create
tenant = tenant_create(name="味道江南", slug="bench")
with tenant_scope(tenant):
    template, store_ids = seed_intake(tenant=tenant)
    with_workflow = seed_workflow_template(tenant=tenant)
    with_dispatch = seed_dispatch_template(tenant=tenant, store_ids=store_ids)
    _key, secret = api_key_create(tenant=tenant, name="bench")
print(json.dumps({"tenant": tenant.slug, "tenant_id": tenant.pk, "template": template.slug,
                  "template_workflow": with_workflow.slug,
                  "template_dispatch": with_dispatch.slug, "store_ids": store_ids, "api_key": secret}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"seeding the bench site failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def db_counts(env, tenant_id):
    code = r"""
import json, django
django.setup()
from django.db.models import Count
from notifications.models import Notification
from scrm.tenancy import tenant_scope
from tickets.models import EventKind, Ticket, TimelineEvent
from workflow.models import Run
with tenant_scope(TENANT_ID):
    by_source = dict(Ticket.objects.values_list("source").annotate(n=Count("id")).order_by())
    print(json.dumps({"tickets": by_source,
                      "created_events": TimelineEvent.objects.filter(kind=EventKind.CREATED).count(),
                      "tickets_with_outbox": Notification.objects.values("ticket").distinct().count(),
                      "runs": Run.objects.count(),
                      "numbers": Ticket.objects.values("number").distinct().count()}))
""".replace("TENANT_ID", str(int(tenant_id)))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- gunicorn -------------------------------------------------------------------------------

class Gunicorn:
    def __init__(self, env, *, worker_class, workers, threads):
        self.port = free_port()
        args = [str(BIN / "gunicorn"), "scrm.wsgi:application", "--bind", f"{HOST}:{self.port}",
                "--workers", str(workers), "--worker-class", worker_class, "--worker-tmp-dir", "/dev/shm",
                "--log-level", "warning", "--timeout", "60"]
        if worker_class == "gthread":
            args += ["--threads", str(threads)]
        self.label = f"{worker_class} {workers}w" + (f"x{threads}t" if worker_class == "gthread" else "")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/healthz?live=1")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not start")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --- clients --------------------------------------------------------------------------------

def multipart(fields):
    boundary = uuid.uuid4().hex
    lines = []
    for name, value in fields.items():
        lines += [f"--{boundary}", f'Content-Disposition: form-data; name="{name}"', "", str(value)]
    # The image field the browser sends empty.
    lines += [f"--{boundary}", 'Content-Disposition: form-data; name="photos"; filename=""',
              "Content-Type: application/octet-stream", "", ""]
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(lines).encode(), f"multipart/form-data; boundary={boundary}"


class Client:
    """One browser or integrator: its own keep-alive connection (re-opened when the server closes
    it, as gunicorn's sync workers do after every response)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close" or response.will_close:
                self.conn.close()
                self.conn = None
            return response, data
        raise AssertionError("unreachable")


def _all_ready(ready, errors):
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        errors.append("another client could not start")
        return False
    return True


def form_worker(port, site, template, indices, results, errors, ready):
    from intake_seed import form_data

    client = Client(port)
    path = f"/s/{site['tenant']}/{template}/"
    response, body = client.request("GET", path)
    if response.status != 200:
        errors.append(f"GET {path}: {response.status}")
        ready.abort()
        return
    cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie", "")).group(1)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    # Built before the clock starts: the load client's CPU is taken from the same two cores.
    requests = []
    for i in indices:
        fields = {"csrfmiddlewaretoken": token, **form_data(i, store_ids=site["store_ids"], phones=site["phones"])}
        payload, content_type = multipart(fields)
        requests.append((i, payload, {"Content-Type": content_type, "Cookie": f"csrftoken={cookie}"}))
    if not _all_ready(ready, errors):
        return
    for i, payload, headers in requests:
        started = time.perf_counter()
        response, body = client.request("POST", path, body=payload, headers=headers)
        elapsed = time.perf_counter() - started
        if response.status == 302 and "/s/thanks/" in (response.getheader("Location") or ""):
            results.append(elapsed)
        else:
            errors.append(f"POST form #{i}: {response.status} {body[:200]!r}")


def api_worker(port, site, template, indices, results, errors, ready):
    from intake_seed import form_data

    client = Client(port)
    requests = []
    for i in indices:
        data = form_data(i, store_ids=site["store_ids"], phones=site["phones"])
        payload = {"template": template, "data": data,
                   "customer": {"name": data["contact_name"], "phone": data["contact_phone"]}}
        headers = {"Content-Type": "application/json", "Authorization": f"Api-Key {site['api_key']}",
                   "Idempotency-Key": str(uuid.uuid4())}
        requests.append((i, json.dumps(payload).encode(), headers))
    if not _all_ready(ready, errors):
        return
    for i, payload, headers in requests:
        started = time.perf_counter()
        response, body = client.request("POST", "/api/v1/tickets/", body=payload, headers=headers)
        elapsed = time.perf_counter() - started
        if response.status == 201:
            results.append(elapsed)
        else:
            errors.append(f"POST api #{i}: {response.status} {body[:300]!r}")


# part: (client, the site's template key, the tickets' source)
PARTS = {
    "form": (form_worker, "template_workflow", "web"),
    "form_plain": (form_worker, "template", "web"),
    # the preset workflow whose first node is a smart-dispatch rule (workflow/dispatch_rule.py)
    "form_dispatch": (form_worker, "template_dispatch", "web"),
    "api": (api_worker, "template_workflow", "api"),
    "api_plain": (api_worker, "template", "api"),
}


def drive(part, port, site, start, count, clients, on_start=None):
    """Run `count` requests of a part over `clients` threads. Each builds its requests first;
    the clock (and `on_start`, the CPU meter) starts once all are built."""
    worker, template_key, _source = PARTS[part]
    results, errors = [], []
    ready = threading.Barrier(clients + 1)
    chunks = [range(start + c, start + count, clients) for c in range(clients)]
    threads = [threading.Thread(target=worker, args=(port, site, site[template_key], chunk, results, errors, ready))
               for chunk in chunks]
    for t in threads:
        t.start()
    # A client that could not start breaks the barrier: all stop, their errors say why.
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
    if on_start is not None:
        on_start()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return results, errors, time.perf_counter() - began


def summary(name, label, results, errors, elapsed, cpu):
    """Print one part's line; returns its tickets/s."""
    ms = [r * 1000 for r in results] or [0]
    print(f"{name} [{label}]: ok={len(results)}, errors={len(errors)}, "
          f"tickets_per_s={round(len(results) / elapsed, 1)}, p50_ms={round(statistics.median(ms), 1)}, "
          f"p95_ms={round(percentile(ms, 95), 1)}, max_ms={round(max(ms), 1)}, "
          + ", ".join(f"{k}={v}" for k, v in cpu.items()), flush=True)
    for e in errors[:5]:
        print("   ", e, flush=True)
    return len(results) / elapsed


def ratios_print(rates, label):
    """The workflow path against the plain one, per channel measured both ways."""
    for channel in ("form", "api"):
        if rates.get(channel) and rates.get(f"{channel}_plain"):
            print(f"http_intake_{channel} [{label}]: with its workflow {rates[channel]:.1f} tickets/s, "
                  f"without {rates[f'{channel}_plain']:.1f} tickets/s, "
                  f"ratio {rates[channel] / rates[f'{channel}_plain']:.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000, help="tickets per part (form, API)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--matrix", action="store_true", help="run sync and gthread (2 and 4 threads) in turn")
    parser.add_argument("--parts", default="form,form_plain,api,api_plain",
                        help="of form, form_plain, form_dispatch, api, api_plain (the _plain parts: the template "
                             "without workflow; form_dispatch: the workflow with a smart-dispatch first node)")
    parser.add_argument("--db-name", help="the throw-away database's name (default bench_http_<pid>)")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/scrm")
    name = args.db_name or f"bench_http_{os.getpid()}"
    static_root = tempfile.TemporaryDirectory(prefix="scrm-bench-static-")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "scrm.settings", "SCRM_ENV": "production", "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex, "ALLOWED_HOSTS": HOST, "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": db_url(base, name), "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "60"),
        "REDIS_URL": REDIS_DB_URL, "STATIC_ROOT": static_root.name, "LOG_LEVEL": "WARNING",
        "PUBLIC_FORM_RATE_PER_MINUTE": "1000000", "API_RATE_PER_MINUTE": "1000000", "SITE_URL": f"http://{HOST}",
    }
    configs = ([("sync", 1), ("gthread", 2), ("gthread", 4)] if args.matrix
               else [(args.worker_class, args.threads)])
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    try:
        import redis

        redis.Redis.from_url(REDIS_DB_URL, socket_connect_timeout=2).ping()
        admin_sql(base, "SELECT 1")
    except Exception as exc:  # make bench on a laptop without the services: say so, do not fail
        print(f"http_intake: skipped, needs PostgreSQL ({base}) and Redis (127.0.0.1:6379): {exc}")
        return 0
    admin_sql(base, f'CREATE DATABASE "{name}"')
    print(f"http_intake: load average before the run {os.getloadavg()[0]:.2f} (other processes share the CPUs)",
          flush=True)
    server = None
    ok = True
    try:
        site = setup_site(env)
        site["phones"] = max(1, args.count * 2 // 3)
        expected = {"web": 0, "api": 0, "runs": 0}
        start = 0
        for worker_class, threads in configs:
            server = Gunicorn(env, worker_class=worker_class, workers=args.workers, threads=threads)
            # Warm-up: every worker imports, builds its URL resolvers and opens its connection.
            warm = 20
            for part in parts:
                results, errors, _ = drive(part, server.port, site, start, warm, args.clients)
                expected[PARTS[part][2]] += len(results)
                expected["runs"] += len(results) if PARTS[part][1] != "template" else 0
                start += warm
            meter = CpuMeter(server, base, name)
            rates = {}
            label = f"{server.label}, {args.clients} clients"
            for part in parts:
                results, errors, elapsed = drive(part, server.port, site, start, args.count, args.clients,
                                                 on_start=meter.start)
                cpu = meter.stop(len(results))
                expected[PARTS[part][2]] += len(results)
                expected["runs"] += len(results) if PARTS[part][1] != "template" else 0
                ok &= not errors
                rates[part] = summary(f"http_intake_{part}", label, results, errors, elapsed, cpu)
                start += args.count
            ratios_print(rates, label)
            meter.close()
            server.stop()
            server = None
        counts = db_counts(env, site["tenant_id"])
        made = counts["tickets"]
        total = expected["web"] + expected["api"]
        checks = {
            "web": made.get("web", 0) == expected["web"],
            "api": made.get("api", 0) == expected["api"],
            "created_events": counts["created_events"] == total,
            "outbox": counts["tickets_with_outbox"] == total,
            "runs": counts["runs"] == expected["runs"],
            "numbers_unique": counts["numbers"] == total,
        }
        print(f"http_intake check: answered web={expected['web']} api={expected['api']} "
              f"(workflow template {expected['runs']}); in the database tickets={made}, "
              f"created events={counts['created_events']}, tickets with outbox rows={counts['tickets_with_outbox']}, "
              f"workflow runs={counts['runs']}, distinct numbers={counts['numbers']} -> "
              f"{'OK' if all(checks.values()) else 'MISMATCH ' + str(checks)}", flush=True)
        ok &= all(checks.values())
    finally:
        if server is not None:
            server.stop()
        admin_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import redis

        redis.Redis.from_url(REDIS_DB_URL).flushdb()
        static_root.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
