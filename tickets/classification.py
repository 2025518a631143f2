"""Keyword classification as a pure function over plain data: which rule fires for a text.
The intake service loads the tenant's rules (selectors) and applies the winner."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    keywords: tuple[str, ...]
    match_all: bool = False
    template_id: int | None = None
    category_id: int | None = None
    priority: str = ""
    tag_ids: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Verdict:
    rule: Rule
    matched: tuple[str, ...]


def _normalise(text):
    # Full-width letters and case should not hide a keyword (ＶＩＰ, Refund).
    return "".join(chr(ord(c) - 0xFEE0) if "！" <= c <= "～" else c for c in text).casefold()


def rule_match(rules, text):
    """The first rule (in the given order) whose keywords occur in the text, or None."""
    haystack = _normalise(text or "")
    if not haystack:
        return None
    for rule in rules:
        keywords = [k for k in rule.keywords if k.strip()]
        if not keywords:
            continue
        hits = tuple(k for k in keywords if _normalise(k.strip()) in haystack)
        if (rule.match_all and len(hits) == len(keywords)) or (not rule.match_all and hits):
            return Verdict(rule=rule, matched=hits)
    return None
