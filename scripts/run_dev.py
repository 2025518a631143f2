"""`make run`: start the web server, a Celery worker and Celery beat on the embedded defaults,
print where to sign in, and stop all three on Ctrl-C (or when any of them dies)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = os.environ.get("SCRM_HOST", "127.0.0.1")
PORT = os.environ.get("SCRM_PORT", "8000")


def main():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    commands = {
        "web": [sys.executable, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
        "worker": [str(BIN / "celery"), "-A", "scrm", "worker", "--loglevel=INFO", "--concurrency=2"],
        "beat": [str(BIN / "celery"), "-A", "scrm", "beat", "--loglevel=INFO"],
    }
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, env=env) for name, cmd in commands.items()}
    print(f"\n  SCRM 工单 running at http://{HOST}:{PORT}/  (admin: http://{HOST}:{PORT}/admin/)")
    print("  Demo logins: see the table above (password demo12345). Ctrl-C stops web, worker and beat.\n", flush=True)

    stopping = False

    def stop(*_args):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            dead = [name for name, proc in procs.items() if proc.poll() is not None]
            if dead:
                print(f"  {', '.join(dead)} stopped; shutting the rest down.", flush=True)
                break
            time.sleep(0.5)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.time() + 10
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
