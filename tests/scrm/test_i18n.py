"""Two languages ship: every zh_Hans entry is translated, the committed .mo matches the .po,
Chinese is the default, and the switcher changes the language."""

from pathlib import Path

import polib
import pytest
from django.urls import reverse
from django.utils import translation

PO = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def test_every_chinese_entry_is_translated():
    po = polib.pofile(str(PO))
    untranslated = [e.msgid for e in po if not e.translated() or "fuzzy" in e.flags]
    assert untranslated == []
    assert len(po) > 150


def test_compiled_catalog_matches_the_po_file():
    po = polib.pofile(str(PO))
    stale = []
    with translation.override("zh-hans"):
        for entry in po:
            if entry.msgid_plural:
                got = translation.ngettext(entry.msgid, entry.msgid_plural, 1)
                want = entry.msgstr_plural[0]
            elif entry.msgctxt:
                got, want = translation.pgettext(entry.msgctxt, entry.msgid), entry.msgstr
            else:
                got, want = translation.gettext(entry.msgid), entry.msgstr
            if got != want:
                stale.append(entry.msgid)
    assert stale == [], "run `make messages` and commit the .mo"


@pytest.mark.django_db
def test_chinese_by_default_and_switch_to_english(agent_a, client_for):
    client = client_for(agent_a)
    body = client.get(reverse("customer-list")).content.decode()
    assert '<html lang="zh-hans">' in body
    assert "搜索姓名或电话" in body
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("customer-list")})
    assert response.status_code == 302
    body = client.get(reverse("customer-list")).content.decode()
    assert '<html lang="en">' in body
    assert "Search name or phone" in body


@pytest.mark.django_db
def test_login_page_is_chinese_for_anonymous(client):
    body = client.get(reverse("login")).content.decode()
    assert "请使用员工账号登录。" in body
