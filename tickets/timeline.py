"""Timeline entries stored as an event code and its parameters, rendered in the reader's language.

A service writes `timeline_event_add(code="workflow.entered", params={"node": "受理", …})`; the
ticket page and the tracking page show `event.text`, which formats the code's (lazily
translated) text with the parameters when the page is drawn — so an engineer reading in English
and a customer reading in Chinese each see their own language, whoever wrote the entry. What a
person typed (a comment, a note, a reason) stays in `message` and is shown as typed, below.

Apps register their codes with `timeline_code(code, text, **translators)`; a translator turns a
stored parameter (a status value, a source, a list of names) into words at render time. Rows
written before codes existed have no code: their `message` is shown as it was stored.

The customer reads the same public entries through `event.public_text`: a code may give the
customer its own wording (`public=`: no rule names, workflow versions or handler names), hide
itself from them (`public=None`), and keep what staff typed with it to staff (`public_message=False`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from .models import Source, Status

_SAME: Any = object()  # the customer reads the staff wording


@dataclass(frozen=True)
class TimelineCode:
    text: Promise | str
    translators: dict[str, Callable[[Any], str]] = field(default_factory=dict)
    public: Promise | str | None = _SAME
    public_message: bool = True


_CODES: dict[str, TimelineCode] = {}


def timeline_code(code: str, text: Promise | str, *, public: Promise | str | None = _SAME,
                  public_message: bool = True, **translators: Callable[[Any], str]) -> None:
    """Register (or replace) the text of an event code; `translators` render parameters.
    `public` is the customer's wording (None: customers never see the entry);
    `public_message=False` keeps the typed message that comes with it to staff."""
    _CODES[code] = TimelineCode(text=text, translators=translators, public=public, public_message=public_message)


def timeline_code_known(code: str) -> bool:
    return code in _CODES


def source_label(value: Any) -> str:
    return str(Source(value).label) if value in Source.values else str(value)


def status_label(value: Any) -> str:
    return str(Status(value).label) if value in Status.values else str(value or "")


def names_list(value: Any) -> str:
    """A list of person names; None stands for "nobody yet" (the exception pool)."""
    if not isinstance(value, list):
        return str(value)
    return "、".join(str(v) if v else str(_("unassigned (exception pool)")) for v in value)


def person(value: Any) -> str:
    return str(value) if value else str(_("System"))


def _format(spec: TimelineCode, text: Promise | str, params: dict | None) -> str:
    values = dict(params or {})
    for key, translate in spec.translators.items():
        if key in values:
            values[key] = translate(values[key])
    try:
        return str(text) % values
    except (KeyError, TypeError, ValueError):
        return str(text)


def event_text(*, code: str, params: dict | None, message: str) -> str:
    """The entry's text in the active language: its code's text, then what a person typed."""
    parts = []
    spec = _CODES.get(code) if code else None
    if spec is not None:
        parts.append(_format(spec, spec.text, params))
    if message:
        parts.append(message)
    return "\n".join(parts)


def event_public_text(*, code: str, params: dict | None, message: str) -> str | None:
    """What the customer reads of a public entry, or None when the entry is for staff only."""
    spec = _CODES.get(code) if code else None
    if spec is None:
        return message  # a comment, a reply, an attachment: what was typed for them
    if spec.public is None:
        return None
    parts = [_format(spec, spec.text if spec.public is _SAME else spec.public, params)]
    if message and spec.public_message:
        parts.append(message)
    return "\n".join(parts)


_CHANGE_LABELS = {
    "status": _("Status"), "assignee": _("Assignee"), "handler": _("Handler"),
}


def _pick(label: Any) -> str:
    """A field label: a {language: text} dict (custom fields) in the active language, or text."""
    if isinstance(label, dict):
        language = (get_language() or "zh-hans").lower()
        return str(label.get(language) or label.get(language.split("-")[0]) or label.get("zh-hans")
                   or next(iter(label.values()), ""))
    return str(label or "")


def change_rows(changes: list | None) -> list[dict[str, str]]:
    """`changes` as rows of label / old / new in the active language."""
    rows = []
    for change in changes or []:
        if not isinstance(change, dict):
            continue
        name = change.get("field", "")
        label = _CHANGE_LABELS.get(name) or _pick(change.get("label")) or name
        old, new = change.get("old", ""), change.get("new", "")
        if name == "status":
            old, new = status_label(old), status_label(new)
        rows.append({"field": name, "label": str(label), "old": "" if old is None else str(old),
                     "new": "" if new is None else str(new)})
    return rows


# --- the codes of the tickets app --------------------------------------------------------

timeline_code("ticket.created", _("Ticket created via %(source)s."), source=source_label)
timeline_code("ticket.created_by_rule",
              pgettext_lazy("timeline", "Ticket created via %(source)s. Rule “%(rule)s” matched: %(words)s."),
              public=_("Ticket created via %(source)s."), source=source_label)
timeline_code("ticket.on_the_way", _("Engineer %(name)s is on the way, arriving about %(eta)s."))
timeline_code("ticket.split_from", _("Split from %(number)s."))
timeline_code("ticket.split_into", _("Split into %(numbers)s."))
timeline_code("ticket.merged_into", _("Merged into %(number)s."))
timeline_code("ticket.merged_from", _("%(number)s was merged into this ticket."))
timeline_code("ticket.picture_received", _("Picture received via %(source)s."), source=source_label)
timeline_code("ticket.picture_failed", _("The picture sent via %(source)s could not be fetched: %(reason)s"),
              source=source_label)


# --- site visits (tickets/services/visits.py) ----------------------------------------------

def photo_phase(value: Any) -> str:
    return str({"before": _("before the work"), "after": _("after the work")}.get(value, value))


timeline_code("ticket.site_checkin", _("%(name)s checked in on site at %(time)s."))
timeline_code("ticket.site_checkout", _("%(name)s checked out at %(time)s after %(minutes)s minutes on site."))
timeline_code("ticket.site_photo", _("Site photo, %(phase)s."), phase=photo_phase)
timeline_code("ticket.site_signed", _("The customer %(signer)s signed to confirm the work."))
timeline_code("ticket.site_checkin_reviewed", _("%(name)s reviewed the flagged check-in of %(engineer)s."))
