"""The slots of 今日任务 that other capabilities fill: the parts to bring (spare parts) and the
day's earnings (settlement). Both apps sit below fieldservice, so this module will import their
selectors directly once they exist; until then each slot returns "nothing" and the page shows
nothing for it.

To plug in (the lead, when merging):
- spare parts: `parts_to_bring` returns {ticket id: [(part name, quantity), …]} — call e.g.
  `spareparts.selectors.parts_for_tickets(ticket_ids=…)` (the reservations of the tickets' open
  nodes), in ONE query for all tickets of the page.
- settlement: `earnings_today` returns the engineer's earnings of the day as
  (amount Decimal, url of their statement or None) — e.g. from `settlement.selectors`.
"""

from decimal import Decimal


def parts_to_bring(*, ticket_ids) -> dict[int, list[tuple[str, int]]]:
    """{ticket id: [(part name, quantity)]}; empty until spare parts provides it."""
    return {}


def earnings_today(*, user, day) -> tuple[Decimal, str | None] | None:
    """(amount, statement url) of the engineer's day; None until settlement provides it."""
    return None
