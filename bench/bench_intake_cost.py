"""What one public-form ticket costs the web process, in CPU instructions: a figure that does not
move with the machine's speed, which on a shared 2-core box drifts by a factor of two within an
hour and so hides changes of a few percent in tickets/s and CPU milliseconds.

    .venv/bin/python bench/bench_intake_cost.py                # 200 POSTs, 2 of 3 by a new customer
    .venv/bin/python bench/bench_intake_cost.py --requests 500
    .venv/bin/python bench/bench_intake_cost.py --part api     # POST /api/v1/tickets/ instead
    .venv/bin/python bench/bench_intake_cost.py --template workflow --show-sql   # one path, its SQL

It seeds a throw-away PostgreSQL database as bench_http_intake does (production settings, Redis
db 14), then drives Django's WSGI handler in one process under valgrind's callgrind: the browser's
multipart POST with its CSRF token, the whole pipeline to the 302, the outbox row published to
Redis. Instrumentation is switched on only around the measured requests (after a warm-up), so
start-up is not counted; PostgreSQL's and Redis's own work is not counted either (see
bench_http_intake for theirs). Measures the 餐饮投诉 template running its preset workflow (what
every demo template does) and the same template without one, each in its own process, and
prints instructions per request, the SQL statements of one, and the ratio of the two paths.
Needs valgrind (`apt-get install valgrind`); skipped with a message without it or the services."""

import argparse
import collections
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def child(site, requests, part, show_sql):
    """Runs under valgrind: warm up, say READY, wait, run the measured requests, say DONE."""
    import django

    django.setup()
    from bench_http_intake import multipart
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from intake_seed import form_data

    app = get_wsgi_application()
    form_path = f"/s/{site['tenant']}/{site['measured']}/"

    def call(method, body=b"", headers=None, path=form_path):
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1", "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
            "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1", "wsgi.errors": sys.stderr,
            "SERVER_PROTOCOL": "HTTP/1.1", **(headers or {}),
        }
        answer = {}
        response = app(environ, lambda status, headers, exc=None: answer.update(status=status, headers=headers))
        body = b"".join(response)
        response.close()
        return answer["status"], answer["headers"], body

    _status, headers, body = call("GET")
    cookie = next(re.search(r"csrftoken=([^;]+)", v).group(1) for k, v in headers if k == "Set-Cookie")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()

    def complaint(i):
        data = form_data(i, store_ids=site["store_ids"], phones=10**8)
        # Two of three requests come from a new customer, the third from the one before it.
        # Each template's run has phones of its own, so its new customers are new.
        data["contact_phone"] = f"139{(i if i % 3 else i - 1) + site['phone_base']:08d}"
        return data

    def post_form(i):
        payload, content_type = multipart({"csrfmiddlewaretoken": token, **complaint(i)})
        status, _headers, body = call("POST", payload, {"CONTENT_TYPE": content_type,
                                                         "HTTP_COOKIE": f"csrftoken={cookie}"})
        if not status.startswith("302"):
            raise SystemExit(f"POST #{i}: {status} {body[:300]!r}")

    def post_api(i):
        data = complaint(i)
        payload = json.dumps({"template": site["measured"], "data": data,
                              "customer": {"name": data["contact_name"], "phone": data["contact_phone"]}}).encode()
        status, _headers, body = call("POST", payload, {
            "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": f"Api-Key {site['api_key']}",
            "HTTP_IDEMPOTENCY_KEY": f"bench-{site['phone_base']}-{i}"}, path="/api/v1/tickets/")
        if not status.startswith("201"):
            raise SystemExit(f"POST api #{i}: {status} {body[:300]!r}")

    post = post_form if part == "form" else post_api

    for i in range(1, 31):
        post(i)
    print("READY", flush=True)
    sys.stdin.readline()
    for i in range(31, 31 + requests):
        post(i)
    print("DONE", flush=True)
    sys.stdin.readline()
    k = 31 + requests + 3
    k -= (k % 3) - 2  # k % 3 == 2: a new customer; k + 1 then comes back with k's phone
    counts = []
    for i, who in ((k, "new customer"), (k + 1, "returning customer")):
        with CaptureQueriesContext(connection) as captured:
            post(i)
        counts.append(len(captured.captured_queries))
        if show_sql:
            print(f"SQL -- one request by a {who}:", flush=True)
            for query in captured.captured_queries:
                print("SQL", " ".join(query["sql"].split()), flush=True)
    print("STATEMENTS", *counts, flush=True)


def measure(proc, out_file, args, template):
    """Drive one measured child through its phases; print its line, return M instructions."""
    def expect(word):
        seen = collections.deque(maxlen=30)  # valgrind's and Python's messages, for the error
        for line in proc.stdout:
            if line.startswith(word):
                return line.split()
            if line.startswith("SQL "):
                print(f"  {line.rstrip()}", flush=True)
                continue
            seen.append(line)
        raise RuntimeError(f"the measured process ended before {word}:\n" + "".join(seen))

    expect("READY")
    subprocess.run(["callgrind_control", "--instr=on", str(proc.pid)], check=True, capture_output=True)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    expect("DONE")
    subprocess.run(["callgrind_control", "--instr=off", str(proc.pid)], check=True, capture_output=True)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    statements = expect("STATEMENTS")[1:]
    proc.stdin.close()
    proc.wait(timeout=120)
    with open(out_file) as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("totals:"))
    per_request = total / args.requests / 1e6
    print(f"intake_cost_{args.part} [{template}]: requests={args.requests}, "
          f"instructions_per_request={per_request:.2f}M, "
          f"sql_statements new_customer={statements[0]} returning_customer={statements[1]} "
          "(web process only; 2 of 3 requests by a new customer)", flush=True)
    return per_request


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--part", choices=["form", "api"], default="form",
                        help="the public form (multipart, CSRF) or POST /api/v1/tickets/ (JSON, key, Idempotency-Key)")
    parser.add_argument("--template", choices=["workflow", "plain", "both"], default="both",
                        help="the template running its workflow, the same template without one, or both")
    parser.add_argument("--show-sql", action="store_true", help="print the SQL statements of one request")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.child:
        sys.path.insert(0, str(ROOT))
        child(json.loads(args.child), args.requests, args.part, args.show_sql)
        return 0

    import bench_http_intake as http

    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("intake_cost: skipped, needs valgrind (apt-get install valgrind)")
        return 0
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/scrm")
    try:
        import redis

        redis.Redis.from_url(http.REDIS_DB_URL, socket_connect_timeout=2).ping()
        http.admin_sql(base, "SELECT 1")
    except Exception as exc:
        print(f"intake_cost: skipped, needs PostgreSQL ({base}) and Redis (127.0.0.1:6379): {exc}")
        return 0
    name = f"bench_cost_{os.getpid()}"
    work = tempfile.TemporaryDirectory(prefix="scrm-bench-cost-")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "scrm.settings", "SCRM_ENV": "production", "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex, "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": http.db_url(base, name), "DB_CONN_MAX_AGE": "60", "REDIS_URL": http.REDIS_DB_URL,
        "STATIC_ROOT": os.path.join(work.name, "static"), "LOG_LEVEL": "WARNING",
        "PUBLIC_FORM_RATE_PER_MINUTE": "1000000", "API_RATE_PER_MINUTE": "1000000",
        "SITE_URL": "http://127.0.0.1",
    }
    http.admin_sql(base, f'CREATE DATABASE "{name}"')
    procs = []
    try:
        site = http.setup_site(env)
        templates = ["workflow", "plain"] if args.template == "both" else [args.template]
        figures = {}
        for template in templates:
            measured = {**site, "measured": site["template_workflow" if template == "workflow" else "template"],
                        "phone_base": 0 if template == "workflow" else 10**7}
            out_file = os.path.join(work.name, f"callgrind-{template}.out")
            proc = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_file}",
                 sys.executable, __file__, "--requests", str(args.requests), "--part", args.part,
                 *(["--show-sql"] if args.show_sql else []), "--child", json.dumps(measured)],
                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True,
            )
            procs.append(proc)
            figures[template] = measure(proc, out_file, args, template)
        if len(figures) == 2:
            ratio = figures["workflow"] / figures["plain"]
            print(f"intake_cost_{args.part}: with its workflow {figures['workflow']:.2f}M, without "
                  f"{figures['plain']:.2f}M instructions per ticket, ratio {ratio:.2f}", flush=True)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        http.admin_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import redis

        redis.Redis.from_url(http.REDIS_DB_URL).flushdb()
        work.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
