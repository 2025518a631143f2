"""gunicorn settings of the production image: sync workers behind nginx (deploy/nginx.conf).

nginx buffers requests and responses, so a worker only ever talks to nginx over a fast local
link and sync workers are the right class (bench_http_intake: gthread was slower). Run without
nginx, a sync worker would be held by any client that sends slowly — do not publish port 8000."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "sync"
# A request that runs this long is stuck: the worker is restarted rather than held.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Bounds on what a request line and its headers may be (gunicorn's defaults, written down).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# Recycled now and then so a slow leak in a library cannot grow without end.
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
