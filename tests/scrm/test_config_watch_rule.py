"""The rule "never QuerySet.update() on a watched configuration model", in code: the suite-wide
runtime guard (tests/guards.py) refuses such a write wherever it happens, and a scan of the
apps' source finds the plain `Model.objects….update(` spelled on a watched model even in code no
test runs."""

import ast
from pathlib import Path

import pytest
from django.conf import settings

from notifications.models import NotificationTemplate
from scrm.config_cache import watched_models
from scrm.models import Region, Store
from tests.factories import StoreFactory
from tests.guards import GUARDED, WatchedConfigBulkWrite
from tickets.models import Category, ClassificationRule, TemplateVersion, TicketTemplate
from workflow.models import Workflow, WorkflowVersion

APPS = ["scrm", "notifications", "tickets", "workflow", "settlement", "spareparts", "demo"]


def test_the_apps_watch_the_configuration_intake_caches():
    watched = watched_models()
    for model in (Region, Store, NotificationTemplate, Category, TicketTemplate, TemplateVersion,
                  ClassificationRule, Workflow, WorkflowVersion):
        assert watched.get(model) == "model", model
    assert watched[ClassificationRule.add_tags.through] == "m2m"


@pytest.mark.django_db
def test_the_runtime_guard_refuses_a_bulk_write_of_a_watched_model_and_nothing_changes(scope_a):
    store = StoreFactory(tenant=scope_a, name="静安店")
    queryset = Store.objects.filter(pk=store.pk)  # reached through a variable: a scan would not see it
    with pytest.raises(WatchedConfigBulkWrite, match=r"QuerySet\.update\(\) on scrm\.Store"):
        queryset.update(name="改名")
    with pytest.raises(WatchedConfigBulkWrite, match=r"bulk_update"):
        Store.objects.bulk_update([store], ["name"])
    with pytest.raises(WatchedConfigBulkWrite, match=r"bulk_create"):
        Store.objects.bulk_create([Store(tenant=scope_a, region=store.region, code="X1", name="新店")])
    assert list(Store.objects.values_list("name", flat=True)) == ["静安店"]
    # Saving through the ORM is the way, and models nobody watches may still be bulk-written.
    store.name = "改名"
    store.save()
    assert Store.objects.get(pk=store.pk).name == "改名"


def _chain(node):
    """The attribute names and the root name of `A.b.c(...).d` (calls and subscripts walked through)."""
    names = []
    while True:
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return names, node.id if isinstance(node, ast.Name) else None


def source_bulk_writes(source, model_names):
    """(line, text) of each update/bulk_update/bulk_create on `Name.objects…` for a watched name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in GUARDED):
            continue
        names, root = _chain(node.func.value)
        if root not in model_names or not {"objects", "_default_manager"} & set(names):
            continue
        how = "m2m" if "through" in names else "model"
        if how in GUARDED[node.func.attr]:
            found.append((node.lineno, ast.unparse(node)[:120]))
    return found


def test_the_scan_finds_what_it_looks_for():
    source = ("Store.objects.filter(tenant=t).update(name='x')\n"
              "Category.objects.bulk_create(rows)\n"
              "ClassificationRule.add_tags.through.objects.filter(pk=1).update(tag_id=2)\n"
              "ClassificationRule.add_tags.through.objects.bulk_create(links)\n"
              "Ticket.objects.filter(pk=1).update(status='closed')\n"
              "data.update(x=1)\n")
    assert [line for line, _text in source_bulk_writes(source, {"Store", "Category", "ClassificationRule"})] == [
        1, 2, 3]


def test_no_app_bulk_writes_a_watched_model():
    names = {model.__name__ for model, how in watched_models().items() if how == "model"}
    names |= {through._meta.auto_created.__name__ for through, how in watched_models().items()
              if how == "m2m" and through._meta.auto_created}
    found = []
    for app in APPS:
        for path in sorted((Path(settings.BASE_DIR) / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            found += [f"{path.relative_to(settings.BASE_DIR)}:{line}: {text}"
                      for line, text in source_bulk_writes(path.read_text(encoding="utf-8"), names)]
    assert found == []
