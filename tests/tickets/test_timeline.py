"""Timeline entries as event codes: rendered in the reader's language whoever wrote them, old rows
read back into codes by migration 0006, unknown codes refused."""

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import translation

from tests.factories import published_template
from tickets.models import EventKind, TimelineEvent
from tickets.services import ticket_intake, timeline_event_add
from tickets.timeline import change_rows, event_text

pytestmark = pytest.mark.django_db

FIELDS = [{"key": "note", "type": "text", "label": {"zh-hans": "说明"}, "required": False}]
migration = importlib.import_module("tickets.migrations.0006_timeline_codes_from_messages")


def test_an_entry_is_rendered_in_the_readers_language():
    params = {"node": "上门维修", "names": ["王师傅", None]}
    with translation.override("zh-hans"):
        zh = event_text(code="workflow.entered", params=params, message="")
    with translation.override("en"):
        en = event_text(code="workflow.entered", params=params, message="")
    assert zh == "已流转至“上门维修”，处理人：王师傅、未分配（异常池）。"
    assert en == "Now at “上门维修”, handler: 王师傅、unassigned (exception pool)."


def test_what_a_person_typed_follows_the_sentence_unchanged():
    params = {"node": "受理", "who": "李娜", "action": "return"}
    with translation.override("en"):
        assert event_text(code="task.acted", params=params, message="金额不对") == "“受理”: 李娜 returned.\n金额不对"
    with translation.override("zh-hans"):
        assert event_text(code="", params={}, message="已派师傅") == "已派师傅"


def test_status_changes_render_in_the_readers_language_and_old_rows_as_stored():
    changes = [{"field": "status", "old": "new", "new": "in_progress"},
               {"field": "fee", "label": {"zh-hans": "费用", "en": "Fee"}, "old": "", "new": "88.00"},
               {"field": "status", "label": "状态", "old": "新建", "new": "处理中"}]  # a row from before codes
    with translation.override("en"):
        rows = change_rows(changes)
    assert [(r["label"], r["old"], r["new"]) for r in rows] == [
        ("Status", "New", "In progress"), ("Fee", "", "88.00"), ("Status", "新建", "处理中")]
    with translation.override("zh-hans"):
        assert change_rows(changes)[1]["label"] == "费用"


def test_intake_writes_a_code_not_a_sentence(scope_a):
    template = published_template(scope_a, name="报修", slug="baoxiu", prefix="BX", fields=FIELDS)
    ticket = ticket_intake(tenant=scope_a, source="wecom", template=template, data={}, partial=True)
    event = ticket.events.get()
    assert (event.code, event.params, event.message) == ("ticket.created", {"source": "wecom"}, "")
    with translation.override("zh-hans"):
        assert event.text == "通过企业微信创建工单。"


def test_an_unknown_code_is_refused_and_nothing_is_written(scope_a):
    template = published_template(scope_a, name="报修", slug="baoxiu", prefix="BX", fields=FIELDS)
    ticket = ticket_intake(tenant=scope_a, source="web", template=template, data={}, partial=True)
    with pytest.raises(ValueError, match="unknown timeline code"):
        timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, code="workflow.teleported")
    assert ticket.events.count() == 1


def test_the_migration_reads_old_sentences_back_into_codes(scope_a):
    template = published_template(scope_a, name="报修", slug="baoxiu", prefix="BX", fields=FIELDS)
    ticket = ticket_intake(tenant=scope_a, source="web", template=template, data={}, partial=True)
    old = [
        ("通过网页表单创建工单。", []),
        ("Now at “受理”, handler: 王芳、unassigned (exception pool).", []),
        ("“总经理审批”：张伟已退回。\n金额不对，请核实", []),
        ("客户要求改期\nThe workflow was stopped; its open tasks were withdrawn.", []),
        ("这句话不认识", [{"field": "status", "label": "状态", "old": "新建", "new": "处理中"}]),
    ]
    with translation.override("zh-hans"):
        acted = translation.gettext("“%(node)s”: %(who)s %(action)s.") % {
            "node": "总经理审批", "who": "张伟", "action": translation.gettext("returned")}
    old[2] = (acted + "\n金额不对，请核实", [])
    ids = [timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, message=m, changes=c).pk for m, c in old]

    state = MigrationExecutor(connection).loader.project_state(("tickets", "0006_timeline_codes_from_messages"))
    migration.forwards(state.apps, None)

    rows = {e.pk: e for e in TimelineEvent.objects.filter(pk__in=ids)}
    got = [(rows[pk].code, rows[pk].params, rows[pk].message) for pk in ids]
    assert got[0] == ("ticket.created", {"source": "web"}, "")
    assert got[1] == ("workflow.entered", {"node": "受理", "names": ["王芳", None]}, "")
    assert got[2] == ("task.acted", {"node": "总经理审批", "who": "张伟", "action": "return"}, "金额不对，请核实")
    assert got[3] == ("workflow.stopped", {}, "客户要求改期")
    assert got[4] == ("", {}, "这句话不认识")
    assert rows[ids[4]].changes == [{"field": "status", "label": "状态", "old": "new", "new": "in_progress"}]
    with translation.override("en"):
        assert rows[ids[2]].text == "“总经理审批”: 张伟 returned.\n金额不对，请核实"
