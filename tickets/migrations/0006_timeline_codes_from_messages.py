"""Existing timeline entries were stored as sentences in their writer's language. This reads
each one back into the event code and parameters that new entries store (tickets/timeline.py),
trying the sentence in both shipped languages, so the page can render it in the reader's
language. What a person typed below the sentence (a comment on an act, a note) stays in
`message`. A sentence that matches no code is left as it was and is shown as stored."""

import re

from django.db import migrations
from django.utils import translation

LANGUAGES = ("zh-hans", "en")

# (code, sentence as written by the code before this change) — the msgids of the catalogue.
SENTENCES = [
    ("ticket.created_by_rule", "Ticket created via %(source)s. Rule “%(rule)s” matched: %(words)s."),
    ("ticket.created", "Ticket created via %(source)s."),
    ("ticket.on_the_way", "Engineer %(name)s is on the way, arriving about %(eta)s."),
    ("ticket.split_from", "Split from %(number)s."),
    ("ticket.split_into", "Split into %(numbers)s."),
    ("ticket.merged_into", "Merged into %(number)s."),
    ("ticket.merged_from", "%(number)s was merged into this ticket."),
    ("ticket.picture_received", "Picture received via %(source)s."),
    ("ticket.picture_failed", "The picture sent via %(source)s could not be fetched: %(reason)s"),
    ("workflow.started", "Workflow “%(name)s” v%(n)d started."),
    ("workflow.branch", "Branch “%(node)s” → %(to)s."),
    ("workflow.parallel", "Parallel work starts: %(names)s."),
    ("workflow.joined", "All branches joined at “%(node)s”."),
    ("workflow.auto", "Automatic step “%(node)s”: %(line)s"),
    ("workflow.entered", "Now at “%(node)s”, handler: %(names)s."),
    ("workflow.returned_to", "Returned to “%(node)s”, handler: %(names)s."),
    ("workflow.finished", "Workflow finished; the ticket is closed."),
    ("task.acted", "“%(node)s”: %(who)s %(action)s."),
]
ACT_WORDS = {"submit": "submitted", "approve": "approved", "reject": "rejected", "return": "returned",
             "transfer": "transferred", "cohandle": "added a co-handler", "split": "split the ticket",
             "close": "closed the ticket"}
SOURCES = {"web": "Web form", "staff": "Staff", "phone": "Phone", "api": "API", "wecom": "WeChat Work",
           "wechat": "WeChat official account", "email": "Email"}
STATUSES = {"new": "New", "in_progress": "In progress", "waiting": "Waiting on customer", "resolved": "Resolved",
            "closed": "Closed", "cancelled": "Cancelled"}
STOPPED = "The workflow was stopped; its open tasks were withdrawn."
UNASSIGNED = "unassigned (exception pool)"


def _pattern(text, choices=None):
    """The sentence as a regex: each %(name)s a lazy group, or one of `choices[name]` (words that
    may stand right after another parameter, as in Chinese "张伟已退回")."""
    out, pos = "", 0
    for m in re.finditer(r"%\((\w+)\)([sd])", text):
        out += re.escape(text[pos:m.start()])
        name = m.group(1)
        if choices and name in choices:
            out += f"(?P<{name}>" + "|".join(re.escape(c) for c in sorted(choices[name], key=len, reverse=True)) + ")"
        else:
            out += rf"(?P<{name}>\d+)" if m.group(2) == "d" else rf"(?P<{name}>.+?)"
        pos = m.end()
    return re.compile(out + re.escape(text[pos:]) + r"(?:\n(?P<_typed>.*))?\Z", re.S)


def _catalogue():
    patterns, words, sources, statuses = [], {}, {}, {}
    for language in LANGUAGES:
        with translation.override(language):
            acts = {"action": [translation.gettext(w) for w in ACT_WORDS.values()]}
            for code, text in SENTENCES:
                if code == "ticket.created_by_rule":
                    sentence = (translation.gettext("Ticket created via %(source)s.") + " "
                                + translation.gettext("Rule “%(rule)s” matched: %(words)s."))
                else:
                    sentence = translation.gettext(text)
                patterns.append((code, _pattern(sentence, acts if code == "task.acted" else None)))
            words.update({translation.gettext(w): a for a, w in ACT_WORDS.items()})
            sources.update({translation.gettext(label): v for v, label in SOURCES.items()})
            statuses.update({translation.pgettext("ticket status", label): v for v, label in STATUSES.items()})
            statuses.update({translation.gettext(label): v for v, label in STATUSES.items()})
            words[translation.gettext(STOPPED)] = "__stopped__"
            words[translation.gettext(UNASSIGNED)] = "__unassigned__"
    return patterns, words, sources, statuses


def _parse(message, catalogue):
    patterns, words, sources, _statuses = catalogue
    for code, pattern in patterns:
        m = pattern.match(message)
        if m is None:
            continue
        params = {k: v for k, v in m.groupdict().items() if k != "_typed" and v is not None}
        if "source" in params:
            params["source"] = sources.get(params["source"], params["source"])
        if "n" in params:
            params["n"] = int(params["n"])
        if code == "task.acted":
            action = words.get(params.get("action", ""))
            if action is None:
                continue
            params["action"] = action
        if code in ("workflow.entered", "workflow.returned_to"):
            params["names"] = [None if words.get(n) == "__unassigned__" else n for n in params["names"].split("、")]
        return code, params, m.group("_typed") or ""
    return None


def _status_changes(changes, statuses):
    out = []
    for change in changes or []:
        if isinstance(change, dict) and change.get("field") == "status":
            change = dict(change, old=statuses.get(change.get("old"), change.get("old")),
                          new=statuses.get(change.get("new"), change.get("new")))
        out.append(change)
    return out


def forwards(apps, schema_editor):
    TimelineEvent = apps.get_model("tickets", "TimelineEvent")
    catalogue = _catalogue()
    stopped = {w for w, code in catalogue[1].items() if code == "__stopped__"}
    batch = []
    for event in TimelineEvent.objects.filter(code="").only("id", "message", "changes").iterator(chunk_size=2000):
        code, params, message = "", {}, event.message
        parsed = _parse(event.message, catalogue) if event.message else None
        if parsed is not None:
            code, params, message = parsed
        else:
            for sentence in stopped:  # a hand-made stop: "<note>\n<sentence>" or the sentence alone
                if event.message == sentence or event.message.endswith("\n" + sentence):
                    code, message = "workflow.stopped", event.message[: -len(sentence)].rstrip("\n")
        changes = _status_changes(event.changes, catalogue[3])
        if code or changes != event.changes:
            event.code, event.params, event.message, event.changes = code, params, message, changes
            batch.append(event)
        if len(batch) >= 500:
            TimelineEvent.objects.bulk_update(batch, ["code", "params", "message", "changes"])
            batch = []
    if batch:
        TimelineEvent.objects.bulk_update(batch, ["code", "params", "message", "changes"])


class Migration(migrations.Migration):

    dependencies = [
        ("tickets", "0005_timeline_codes"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
