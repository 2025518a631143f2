"""The designer's node editor stores the parts option on the node, and loads it back."""

import pytest

from scrm.tenancy import tenant_scope
from tests.workflow.test_views import HTMX, node_data, params, url
from workflow.models import Workflow

pytestmark = pytest.mark.django_db


def test_node_editor_saves_and_reloads_the_parts_option(tenant_a, staff, client_for, repair_template):
    manager = client_for(staff["manager"])
    manager.post(url("workflow-create"), {"template": repair_template.pk, "source": "blank"})
    with tenant_scope(tenant_a):
        workflow = Workflow.objects.get(template=repair_template)
    data = node_data(key="repair", name_zh="上门维修", handler_rule="role",
                     **params("handler", "role", role="engineer", scope="tenant"), parts_reserve="on",
                     parts_consume="on")
    assert manager.post(url("workflow-node", workflow.pk), data, **HTMX).status_code == 200
    plain = dict(data, key="visit", parts_reserve="", parts_consume="")
    plain.pop("parts_reserve"), plain.pop("parts_consume")
    assert manager.post(url("workflow-node", workflow.pk), plain, **HTMX).status_code == 200
    with tenant_scope(tenant_a):
        nodes = {n["key"]: n for n in Workflow.objects.get(pk=workflow.pk).draft["nodes"]}
    assert nodes["repair"]["parts"] == {"reserve": True, "consume": True}
    assert "parts" not in nodes["visit"]
    editor = manager.get(url("workflow-node", workflow.pk, key="repair"), **HTMX).content.decode()
    assert 'name="parts_reserve" id="id_parts_reserve" checked' in editor or (
        'name="parts_reserve"' in editor and "checked" in editor.split('name="parts_reserve"')[1][:80])
