"""Identifiers (template slugs, field keys, workflow node keys, choice values) made from a Chinese
name with pypinyin, so a manager never has to invent Latin names: 订单号 → dingdanhao, 餐饮投诉 →
canyintousu. A collision with an identifier already taken gets a numeric suffix (_2, _3 …).
People may still type their own; `IDENTIFIER_HELP` says in plain words what is allowed.

Why pypinyin: its phrase dictionary picks the right reading of polyphonic characters (重庆 →
chongqing, not zhongqing), which a character table written here would get wrong."""

import re

from django.utils.translation import gettext_lazy as _
from pypinyin import Style, lazy_pinyin

KEY_MAX = 40
_SEPARATORS = re.compile(r"[^a-z0-9]+")

IDENTIFIER_ERROR = _("Use only lower-case letters a–z, digits and the underscore _, starting with a letter, at "
                     "most 40 characters — for example order_no. Leave it empty to have it made from the name.")
IDENTIFIER_HELP = _("Made from the Chinese name when left empty (e.g. 订单号 → dingdanhao); you can change it: "
                    "lower-case letters, digits and _, starting with a letter.")


def identifier_from_name(name, *, taken=(), fallback="item", separator="_", max_length=KEY_MAX):
    """An identifier for `name`: the pinyin of its Chinese characters (one word per run of them),
    with Latin letters and digits kept, lower-case, words joined by `separator`, starting with a
    letter (`fallback` otherwise), at most `max_length` long, and not one of `taken` (a suffix
    _2, _3 … is added; the base is shortened so the suffix fits)."""
    words, run = [], []
    for part in lazy_pinyin(str(name or ""), style=Style.NORMAL, errors=lambda text: f" {text} "):
        if part.strip() and re.fullmatch(r"[a-z]+", part) and not part.startswith(" "):
            run.append(part)  # a syllable: syllables of one Chinese run form one word
            continue
        if run:
            words.append("".join(run))
            run = []
        words += [w for w in _SEPARATORS.split(part.lower()) if w]
    if run:
        words.append("".join(run))
    base = separator.join(words)[:max_length].strip(separator)
    if not base or not base[0].isalpha():
        base = f"{fallback}{separator}{base}".strip(separator)[:max_length]
    taken = set(taken)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        suffix = f"{separator}{n}"
        candidate = base[:max_length - len(suffix)].rstrip(separator) + suffix
    return candidate
