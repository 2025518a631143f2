"""Writes of the dashboards app: quality rules (质检) and the scan that flags tickets.

Phrases are matched literally through one RE2 alternation per rule (tickets.fields.patterns), so
the scan's time is linear in the text whatever a tenant types."""

from __future__ import annotations

import datetime
from typing import Any

import re2
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from tickets.fields.patterns import pattern_compile
from tickets.models import EventKind, Status, Ticket, TimelineEvent

from .models import QualityFlag, QualityRule, QualityRuleKind

MAX_PHRASES = 30
MAX_PHRASE = 50
SCAN_MAX_EVENTS = 20000  # comments read per scan; a larger backlog is read by the next run


def phrases_clean(raw: Any) -> list[str]:
    """A list of phrases from a list or a comma / newline separated text; refused when empty,
    too many or too long."""
    if isinstance(raw, str):
        raw = raw.replace("，", ",").replace("\n", ",").split(",")
    if not isinstance(raw, list):
        raise ValidationError({"phrases": _("Enter the phrases separated by commas.")})
    phrases = []
    for item in raw:
        text = str(item).strip()
        if text and text not in phrases:
            phrases.append(text)
    if not phrases:
        raise ValidationError({"phrases": _("Enter at least one phrase.")})
    if len(phrases) > MAX_PHRASES:
        raise ValidationError({"phrases": _("At most %(n)d phrases per rule.") % {"n": MAX_PHRASES}})
    if any(len(p) > MAX_PHRASE for p in phrases):
        raise ValidationError({"phrases": _("Each phrase has at most %(n)d characters.") % {"n": MAX_PHRASE}})
    return phrases


@transaction.atomic
def quality_rule_save(*, tenant: Any, name: str, kind: str, phrases: Any, rule: QualityRule | None = None,
                      is_active: bool = True) -> QualityRule:
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise ValidationError({"name": _("Give the rule a name of at most 60 characters.")})
    if kind not in QualityRuleKind.values:
        raise ValidationError({"kind": _("Choose a kind of rule.")})
    cleaned = phrases_clean(phrases)
    clash = QualityRule.objects.filter(name=name)
    if rule is not None:
        clash = clash.exclude(pk=rule.pk)
    if clash.exists():
        raise ValidationError({"name": _("A rule with this name exists already.")})
    rule = rule or QualityRule(tenant=tenant)
    rule.name, rule.kind, rule.phrases, rule.is_active = name, kind, cleaned, is_active
    rule.save()
    return rule


def _matcher(rule: QualityRule):
    return pattern_compile("|".join(re2.escape(p) for p in rule.phrases))


def quality_scan(*, since: datetime.datetime, now: datetime.datetime | None = None) -> int:
    """Flag what the active rules find in public staff comments written since `since`, and
    finished tickets of that period missing a required phrase. Idempotent (one flag per rule and
    comment or ticket); returns the number of new flags."""
    now = now or timezone.now()
    rules = list(QualityRule.objects.filter(is_active=True))
    if not rules:
        return 0
    comments = list(TimelineEvent.objects.filter(kind=EventKind.COMMENT, is_public=True, actor__isnull=False,
                                                 created_at__gte=since, created_at__lte=now)
                    .order_by("created_at", "id").values_list("id", "ticket_id", "message")[:SCAN_MAX_EVENTS])
    found: list[QualityFlag] = []
    for rule in rules:
        matcher = _matcher(rule)
        if rule.kind == QualityRuleKind.REQUIRED:
            said = {ticket_id for _pk, ticket_id, message in comments if matcher.search(message or "")}
            finished = (Ticket.objects.filter(Q(resolved_at__gte=since) | Q(status=Status.CLOSED, closed_at__gte=since))
                        .exclude(pk__in=said).values_list("pk", flat=True)[:SCAN_MAX_EVENTS])
            found += [QualityFlag(tenant_id=rule.tenant_id, rule=rule, ticket_id=pk,
                                  excerpt="、".join(rule.phrases)[:190])
                      for pk in finished]
            continue
        for pk, ticket_id, message in comments:
            hit = matcher.search(message or "")
            if hit is not None:
                start = max(hit.start() - 30, 0)
                found.append(QualityFlag(tenant_id=rule.tenant_id, rule=rule, ticket_id=ticket_id, event_id=pk,
                                         excerpt=(message or "")[start:start + 120]))
    before = QualityFlag.objects.count()
    # An existing flag (rule + comment, or rule + ticket) is skipped by the unique constraints.
    QualityFlag.objects.bulk_create(found, ignore_conflicts=True)
    return QualityFlag.objects.count() - before


@transaction.atomic
def quality_flag_review(*, flag: QualityFlag, actor: Any) -> QualityFlag:
    if flag.reviewed_at is None:
        flag.reviewed_by, flag.reviewed_at = actor, timezone.now()
        flag.save(update_fields=["reviewed_by", "reviewed_at"])
    return flag
