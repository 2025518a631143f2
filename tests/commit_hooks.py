"""The on_commit callbacks a test asserts on, without the dashboards cache's stamp replacement
(`dashboards.cache.stamp_bump`), which every write of a ticket, a task or an SLA clock also
registers: a test about the outbox or an inbound fetch counts its own callbacks only."""


def app_callbacks(callbacks):
    return [callback for callback in callbacks
            if getattr(callback, "__qualname__", "") != "_replace_after_commit"]
