"""Extra panels on the customer page from upper apps (automation shows the lead grade and the
next revisit), without scrm importing them: `customer_panel_register(func)` in the upper app's
`ready()`, where `func(*, customer, user)` returns `{"template": name, …context}` or None."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_customer_panels: list[Callable[..., dict | None]] = []


def customer_panel_register(func: Callable[..., dict | None]) -> Callable[..., dict | None]:
    if func not in _customer_panels:
        _customer_panels.append(func)
    return func


def customer_panels(*, customer: Any, user: Any) -> list[dict]:
    return [panel for func in _customer_panels if (panel := func(customer=customer, user=user)) is not None]
