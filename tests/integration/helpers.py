"""What integration tests share that is not a fixture."""

import time


def wait_for(predicate, timeout=20.0):
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False): for work a real
    worker or server does in its own time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
