"""The dashboards cache (dashboards.cache): an entry is never served to another tenant or another
visibility scope, and a replaced stamp — a ticket saved, a roll-up refresh, a grant, the commit
after a change — or its time to live makes it unreachable."""

import datetime
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboards.cache import LIVE, cached, stamp_bump
from dashboards.selectors import TicketFilters, board, intake, manager_figures
from scrm.models import Role, Store
from scrm.services import region_grant, store_grant
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import CustomerFactory, RegionFactory, StoreFactory, published_template
from tickets.services import ticket_intake

pytestmark = pytest.mark.django_db


def test_a_second_read_is_served_from_the_cache(scope_a, staff, file_ticket, places, django_assert_num_queries):
    file_ticket(places["xuhui"])
    assert manager_figures(user=staff["manager"])["open"] == 1
    with django_assert_num_queries(0):
        assert manager_figures(user=staff["manager"])["new_today"] == 1


def test_entries_never_cross_tenants(scope_a, staff, file_ticket, places, tenant_b):
    for _ in range(2):
        file_ticket(places["xuhui"])
    assert manager_figures(user=staff["manager"])["open"] == 2
    assert board(user=staff["manager"], filters=TicketFilters())["shown"] == 2
    manager_b = make_member(tenant_b, Role.MANAGER, "cache_manager_b")  # same role: the same scope "all"
    with tenant_scope(tenant_b):
        store = StoreFactory(tenant=tenant_b, region=RegionFactory(tenant=tenant_b))
        template = published_template(tenant_b, name="安装", slug="install", prefix="AZ")
        ticket_intake(tenant=tenant_b, source="phone", template=template, data={}, title="B 的工单", partial=True,
                      customer=CustomerFactory(tenant=tenant_b), store=store, region=store.region)
        assert manager_figures(user=manager_b)["open"] == 1
        cards = [c.title for column in board(user=manager_b, filters=TicketFilters())["columns"] for c in column.cards]
        assert cards == ["B 的工单"]
    assert manager_figures(user=staff["manager"])["open"] == 2  # and back: A's own entry


def test_entries_never_cross_visibility_scopes(scope_a, staff, file_ticket, places, client_for):
    for store in ("xuhui", "xuhui", "chaoyang"):
        file_ticket(places[store], title=f"{store} 的冷柜")
    east = make_member(scope_a, Role.REGIONAL_MANAGER, "cache_rm_east")
    region_grant(user=east, region=places["east"])
    north = make_member(scope_a, Role.REGIONAL_MANAGER, "cache_rm_north")
    store_grant(user=north, store=places["chaoyang"])
    # The tenant-wide manager first, so a leak would hand the regional managers the whole tenant.
    assert manager_figures(user=staff["manager"])["open"] == 3
    assert manager_figures(user=east)["open"] == 2
    assert manager_figures(user=north)["open"] == 1
    assert manager_figures(user=staff["agent"])["open"] == 3  # tenant-wide too: shares "all"
    for user, expected, shown, hidden in ((staff["manager"], 3, ("xuhui", "chaoyang"), ()),
                                          (east, 2, ("xuhui",), ("chaoyang",)), (north, 1, ("chaoyang",), ("xuhui",))):
        for _ in range(2):  # the second request is drawn from the cached columns
            page = client_for(user).get(reverse("board"))
            body = page.content.decode()
            assert all(f"{store} 的冷柜" in body for store in shown)
            assert not any(f"{store} 的冷柜" in body for store in hidden)
        assert sum(column.count for column in page.context["board"]["columns"]) == expected


def test_a_saved_ticket_replaces_the_live_stamp(scope_a, staff, file_ticket, places, client_for):
    file_ticket(places["xuhui"], title="第一张")
    client = client_for(staff["manager"])
    assert manager_figures(user=staff["manager"])["new_today"] == 1
    assert board(user=staff["manager"], filters=TicketFilters())["shown"] == 1
    assert "第一张" in client.get(reverse("board"), HTTP_HX_REQUEST="true").content.decode()
    file_ticket(places["chaoyang"], title="第二张")
    assert manager_figures(user=staff["manager"])["new_today"] == 2
    assert board(user=staff["manager"], filters=TicketFilters())["shown"] == 2
    assert "第二张" in client.get(reverse("board"), HTTP_HX_REQUEST="true").content.decode()


def test_a_rollup_refresh_replaces_the_rollup_stamp(scope_a, staff, file_ticket, places, roll):
    file_ticket(places["xuhui"])
    roll()
    assert sum(map(sum, intake(user=staff["manager"], filters=TicketFilters(days=7))["series"].values())) == 1
    file_ticket(places["xuhui"])
    # No refresh yet: the dashboard still reads the roll-ups as they were (its documented lag).
    assert sum(map(sum, intake(user=staff["manager"], filters=TicketFilters(days=7))["series"].values())) == 1
    roll()
    assert sum(map(sum, intake(user=staff["manager"], filters=TicketFilters(days=7))["series"].values())) == 2


def test_a_new_grant_widens_a_regional_managers_scope_at_once(scope_a, staff, file_ticket, places):
    for store in ("xuhui", "chaoyang"):
        file_ticket(places[store])
    regional = make_member(scope_a, Role.REGIONAL_MANAGER, "cache_rm")
    store_grant(user=regional, store=places["xuhui"])
    assert manager_figures(user=regional)["open"] == 1
    store_grant(user=regional, store=places["chaoyang"])
    assert manager_figures(user=regional)["open"] == 2


def test_an_entry_cached_before_the_commit_is_dropped_by_the_commit(scope_a, staff,
                                                                     django_capture_on_commit_callbacks):
    def read(value):
        return cached("probe", user=staff["manager"], parts=(), depends=(LIVE,), ttl=60, compute=lambda: value)

    assert read("first") == "first"
    with django_capture_on_commit_callbacks() as after_commit:
        stamp_bump(scope_a.pk, LIVE)  # the change: the stamp is replaced at once…
        # …and a request that read the rows before the commit caches what it saw under the new stamp.
        assert read("seen before the commit") == "seen before the commit"
        assert read("not read") == "seen before the commit"
    assert after_commit  # the second replacement waits for the commit
    for callback in after_commit:
        callback()
    assert read("after the commit") == "after the commit"


def test_an_entry_expires_after_its_time_to_live(scope_a, staff):
    """Time alone moves some figures (a ticket falls overdue without any write; a bulk update sends
    no signal): every entry expires. Real time, as Redis keeps its own clock."""
    def read(value):
        return cached("probe-ttl", user=staff["manager"], parts=(), depends=(LIVE,), ttl=1, compute=lambda: value)

    assert read("first") == "first"
    assert read("second") == "first"
    time.sleep(1.5)
    assert read("third") == "third"


def test_past_its_time_one_request_redraws_while_the_others_serve_the_old_copy(scope_a, staff):
    """A page's clients do not all recompute when its entry's time is up: the first draws the
    successor, a request arriving meanwhile still gets the old copy. Real time, as above."""
    def read(value, compute=None):
        return cached("probe-grace", user=staff["manager"], parts=(), depends=(LIVE,), ttl=1,
                      compute=compute or (lambda: value))

    assert read("first") == "first"
    time.sleep(1.2)
    meanwhile = []

    def draw():
        meanwhile.append(read("drawn twice"))  # another request, while this one draws
        return "second"

    assert read("", compute=draw) == "second"
    assert meanwhile == ["first"]
    assert read("third") == "second"
    stamp_bump(scope_a.pk, LIVE)  # a change is never served from the old copy
    assert read("after the change") == "after the change"


def test_an_explicit_clock_is_never_cached(scope_a, staff, file_ticket, places, django_assert_max_num_queries):
    file_ticket(places["xuhui"])
    manager_figures(user=staff["manager"])
    tomorrow = timezone.now() + datetime.timedelta(days=1)
    assert manager_figures(user=staff["manager"], now=tomorrow)["new_today"] == 0


def test_a_transaction_replaces_each_stamp_once_after_its_commit(scope_a, staff, file_ticket, places,
                                                                 django_capture_on_commit_callbacks, monkeypatch):
    """An intake saves the ticket, its task and its SLA clock: the tenant's LIVE stamp is written
    once, after the commit — and once more before the transaction's own read of the cache."""
    from django.core.cache import cache

    written = []
    set_many = cache.set_many
    monkeypatch.setattr(cache, "set_many", lambda data, **kw: written.extend(data) or set_many(data, **kw))
    live = f"dash:{scope_a.pk}:stamp:live"
    with django_capture_on_commit_callbacks(execute=True):
        file_ticket(places["xuhui"], title="第一张")
    assert written.count(live) == 1
    written.clear()
    with django_capture_on_commit_callbacks(execute=True):
        file_ticket(places["xuhui"], title="第二张")
        assert manager_figures(user=staff["manager"])["new_today"] == 2  # its own read sees its change
        file_ticket(places["xuhui"], title="第三张")
    assert written.count(live) == 2
    assert manager_figures(user=staff["manager"])["new_today"] == 3


def test_the_filter_forms_follow_their_choices_at_once(scope_a, staff, file_ticket, places, repair, client_for):
    """The board's and the dashboard's filter forms are drawn once per scope and query: a renamed
    template, a new store or a regional manager's new grant shows at the next request."""
    from scrm.services import store_grant
    from tickets.services import template_update

    manager = client_for(staff["manager"])
    for url in (reverse("board"), reverse("dashboard")):
        assert "维修" in manager.get(url).content.decode()
    template_update(template=repair, name="上门维修")
    StoreFactory(tenant=scope_a, region=places["east"], name="静安店")
    for url in (reverse("board"), reverse("dashboard")):
        body = manager.get(url).content.decode()
        assert "上门维修" in body and "静安店" in body, url
    regional = make_member(scope_a, Role.REGIONAL_MANAGER, "cache_rm_filters")
    store_grant(user=regional, store=places["xuhui"])
    body = client_for(regional).get(reverse("dashboard")).content.decode()
    assert "徐汇店" in body and "朝阳店" not in body and "静安店" not in body
    store_grant(user=regional, store=places["chaoyang"])
    body = client_for(regional).get(reverse("dashboard")).content.decode()
    assert "徐汇店" in body and "朝阳店" in body and "静安店" not in body
    # A stranger's store in the query is refused for them, and still listed for the manager.
    refused = client_for(regional).get(reverse("dashboard"), {"store": Store.objects.get(name="静安店").pk})
    assert refused.status_code == 400
    assert manager.get(reverse("dashboard"), {"store": Store.objects.get(name="静安店").pk}).status_code == 200


def test_several_changes_in_one_transaction_replace_the_stamp_once_after_the_commit(
        scope_a, staff, django_capture_on_commit_callbacks):
    def read(value):
        return cached("probe-once", user=staff["manager"], parts=(), depends=(LIVE,), ttl=60, compute=lambda: value)

    assert read("first") == "first"
    with django_capture_on_commit_callbacks() as after_commit:
        stamp_bump(scope_a.pk, LIVE)
        assert read("after the first change") == "after the first change"
        stamp_bump(scope_a.pk, LIVE)  # each change is seen at once in the same transaction
        assert read("after the second change") == "after the second change"
        assert read("cached") == "after the second change"
    stamps = []
    for callback in after_commit:
        callback()
        stamps.append(read(f"after callback {len(stamps)}"))
    # The first callback replaces the stamp; the others find nothing left to replace.
    assert stamps == ["after callback 0"] * len(after_commit)
