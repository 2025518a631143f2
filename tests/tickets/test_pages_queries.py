"""The staff ticket list and ticket page read their data in a constant number of queries,
whatever the number of rows, the page size or the length of the timeline. The list stays within
the target of the 1,000,000-ticket bench (bench/bench_ticket_pages.py): 12 queries.

The ticket page of an agent takes 12 too, with or without a workflow. Five are the signed-in
shell every staff page pays: the session, the user, the user's memberships with their tenants
(which also fill the tenant switcher), every permission in one query (the user's own, their
groups' and their role's: scrm.permissions.permissions_preload) and the unread-notification
count. Seven are the page's own: the ticket with what it shows joined (template and version,
customer, opportunity, store, region, assignee, parent, merged-into ticket, workflow run), its
attachments, its timeline events, its notifications, its children and merged duplicates, the
customer's other recent tickets, and the staff the assignee picker offers. The edit and split
forms load when first opened; the workflow panel loads by itself (htmx), within 12 as well."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory, RegionFactory, StoreFactory
from tickets.models import Source, Status
from tickets.services import template_from_preset, ticket_comment_add, ticket_intake
from workflow.lifecycle import ticket_assign, ticket_status_change
from workflow.services import workflow_from_preset

pytestmark = pytest.mark.django_db

LIST_MAX_QUERIES = 12
DETAIL_MAX_QUERIES = 12


@pytest.fixture
def stores(tenant_a):
    with tenant_scope(tenant_a):
        region = RegionFactory(tenant=tenant_a, code="east")
        return [StoreFactory(tenant=tenant_a, region=region, code=f"s{i}") for i in range(3)]


@pytest.fixture
def complaint(tenant_a):
    with tenant_scope(tenant_a):
        return template_from_preset(tenant=tenant_a, preset_slug="canyin_tousu")


def intake(tenant, template, store, title):
    customer = CustomerFactory(tenant=tenant, store=store)
    return ticket_intake(
        tenant=tenant, source=Source.API, template=template, customer=customer, title=title,
        data={"store": store.pk, "dined_at": "2026-01-02T12:00", "complaint_type": "service",
              "description": "服务员态度很差，希望改进", "contact_name": customer.name,
              "contact_phone": customer.phone},
    )


def add_tickets(tenant, template, stores, assignee, count, start=0):
    with tenant_scope(tenant):
        for i in range(start, start + count):
            ticket = intake(tenant, template, stores[i % len(stores)], f"投诉{i:03d}")
            if i % 2:
                ticket_assign(ticket=ticket, assignee=assignee, actor=assignee)
            if i % 3 == 0:
                ticket_status_change(ticket=ticket, action="start", actor=assignee)


def count_queries(client, url, django_assert_max_num_queries, limit=LIST_MAX_QUERIES):
    with django_assert_max_num_queries(limit) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries), response.content.decode()


@pytest.mark.parametrize("query", ["", "?status=in_progress", "?page=2&status=", "?q=TS-", "?open=1&priority=high"])
def test_ticket_list_queries_do_not_grow_with_rows_or_page_size(
    tenant_a, agent_a, complaint, stores, client_for, django_assert_max_num_queries, query
):
    add_tickets(tenant_a, complaint, stores, agent_a, 3)
    client = client_for(agent_a)
    url = reverse("ticket-list") + query
    client.get(url)  # warm-up: content types and other process-wide caches
    few, _body = count_queries(client, url, django_assert_max_num_queries)

    add_tickets(tenant_a, complaint, stores, agent_a, 27, start=3)
    many, body = count_queries(client, url, django_assert_max_num_queries, limit=few)
    sep = "&" if "?" in url else "?"
    big_page, big_body = count_queries(client, f"{url}{sep}per_page=100", django_assert_max_num_queries, limit=few)
    assert many <= few and big_page <= few
    if not query:
        assert body.count('href="/tickets/') - big_body.count('href="/tickets/') <= 0
        assert "投诉029" in big_body and "投诉003" in big_body  # 30 rows on one page of 100


def test_ticket_list_page_size_is_limited(tenant_a, agent_a, complaint, stores, client_for):
    add_tickets(tenant_a, complaint, stores, agent_a, 30)
    client = client_for(agent_a)
    default = client.get(reverse("ticket-list")).content.decode()
    assert default.count('data-testid="ticket-row"') == 25
    assert client.get(reverse("ticket-list") + "?per_page=100").content.decode().count('data-testid="ticket-row"') == 30
    # Anything but the offered sizes falls back to the default.
    odd = client.get(reverse("ticket-list") + "?per_page=100000").content.decode()
    assert odd.count('data-testid="ticket-row"') == 25


def test_ticket_page_queries_do_not_grow_with_the_timeline(
    tenant_a, agent_a, complaint, stores, client_for, django_assert_max_num_queries
):
    add_tickets(tenant_a, complaint, stores, agent_a, 3)
    with tenant_scope(tenant_a):
        from tickets.models import Ticket

        ticket = Ticket.objects.order_by("id").first()
        child_parent = Ticket.objects.order_by("id").last()
    client = client_for(agent_a)
    url = reverse("ticket-detail", args=[ticket.pk])
    client.get(url)
    few, _body = count_queries(client, url, django_assert_max_num_queries, limit=DETAIL_MAX_QUERIES)

    with tenant_scope(tenant_a):
        for i in range(27):
            files = [SimpleUploadedFile(f"照片{i}.txt", b"x" * 10, content_type="text/plain")] if i % 5 == 0 else []
            ticket_comment_add(ticket=ticket, body=f"第{i}条备注", actor=agent_a, is_public=bool(i % 2), files=files)
        ticket_status_change(ticket=ticket, action="wait", actor=agent_a)  # still open: the edit form shows
        add_tickets(tenant_a, complaint, stores, agent_a, 5, start=100)  # more tickets of other customers
        assert Ticket.objects.get(pk=ticket.pk).status == Status.WAITING
    many, body = count_queries(client, url, django_assert_max_num_queries, limit=few)
    assert many <= few
    assert "第26条备注" in body and "照片0.txt" in body
    other, _body = count_queries(client, reverse("ticket-detail", args=[child_parent.pk]),
                                 django_assert_max_num_queries, limit=few)
    assert other <= few


def test_ticket_page_of_a_workflow_ticket_stays_within_the_limit(
    tenant_a, agent_a, complaint, stores, client_for, django_assert_max_num_queries
):
    """A ticket that runs the complaint workflow: the page (where the workflow decides the status)
    and the workflow panel it loads, each within the limit, however long the timeline."""
    from tickets.models import Ticket

    with tenant_scope(tenant_a):
        workflow_from_preset(template=complaint, preset_slug="canyin_tousu")
        # Not add_tickets: it moves statuses by hand, which a ticket in a workflow refuses.
        for i in range(3):
            intake(tenant_a, complaint, stores[i], f"流程投诉{i}")
        ticket = Ticket.objects.select_related("workflow_run").order_by("id").first()
        assert not ticket.workflow_run.is_finished
    client = client_for(agent_a)
    url = reverse("ticket-detail", args=[ticket.pk])
    panel_url = reverse("workflow-ticket-panel", args=[ticket.pk])
    client.get(url)
    few, body = count_queries(client, url, django_assert_max_num_queries, limit=DETAIL_MAX_QUERIES)
    assert f'hx-get="{panel_url}"' in body  # the workflow panel is part of the page
    assert 'data-action="cancel"' in body and 'data-action="resolve"' not in body  # the workflow moves it

    with tenant_scope(tenant_a):
        for i in range(12):
            files = [SimpleUploadedFile(f"现场{i}.txt", b"x" * 10, content_type="text/plain")] if i % 4 == 0 else []
            ticket_comment_add(ticket=ticket, body=f"流程备注{i}", actor=agent_a, is_public=bool(i % 2), files=files)
    _many, body = count_queries(client, url, django_assert_max_num_queries, limit=few)
    assert "流程备注11" in body and "现场8.txt" in body

    client.get(panel_url, HTTP_HX_REQUEST="true")
    with django_assert_max_num_queries(DETAIL_MAX_QUERIES):
        panel = client.get(panel_url, HTTP_HX_REQUEST="true")
    assert panel.status_code == 200 and 'data-testid="workflow-panel"' in panel.content.decode()


def test_ticket_page_shows_picker_fields_by_name(tenant_a, agent_a, complaint, stores, client_for):
    """The store field names the ticket's store (joined with the ticket) or, when it holds
    another store, that one (read for it), like display_value anywhere else."""
    from tickets.models import Ticket

    add_tickets(tenant_a, complaint, stores, agent_a, 1)
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.get()
    client = client_for(agent_a)

    def store_shown():
        page = client.get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
        fields = page.split('data-testid="ticket-fields"', 1)[1].split("</dl>", 1)[0]
        return [s.name for s in stores if s.name in fields]

    assert ticket.store_id == stores[0].pk and store_shown() == [stores[0].name]
    with tenant_scope(tenant_a):
        Ticket.objects.filter(pk=ticket.pk).update(data={**ticket.data, "store": stores[2].pk})
    assert store_shown() == [stores[2].name]


def test_split_form_loads_on_demand(tenant_a, agent_a, complaint, stores, client_for):
    add_tickets(tenant_a, complaint, stores, agent_a, 1)
    with tenant_scope(tenant_a):
        from tickets.models import Ticket

        ticket = Ticket.objects.get()
    client = client_for(agent_a)
    page = client.get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    split_url = reverse("ticket-action", args=[ticket.pk, "split"])
    assert f'hx-get="{split_url}"' in page and 'name="titles"' not in page
    form = client.get(split_url, HTTP_HX_REQUEST="true")
    assert form.status_code == 200
    body = form.content.decode()
    assert 'data-testid="split-form"' in body and 'name="titles"' in body and "csrfmiddlewaretoken" in body
    assert f'<option value="{complaint.pk}">' in body  # the templates children may use
    assert client.get(split_url).status_code == 302  # without htmx: back to the ticket
    # A failed split shows the form with its errors, opened, on the page itself.
    bad = client.post(split_url, {"titles": "  "})
    assert bad.status_code == 400
    bad_body = bad.content.decode()
    assert 'data-testid="split-form"' in bad_body and f'hx-get="{split_url}"' not in bad_body
    with tenant_scope(tenant_a):
        assert not Ticket.objects.filter(parent=ticket).exists()


def test_edit_form_loads_on_demand(tenant_a, agent_a, complaint, stores, client_for):
    add_tickets(tenant_a, complaint, stores, agent_a, 1)
    with tenant_scope(tenant_a):
        from tickets.models import Ticket

        ticket = Ticket.objects.get()
    client = client_for(agent_a)
    page = client.get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    edit_url = reverse("ticket-action", args=[ticket.pk, "edit"])
    assert f'hx-get="{edit_url}"' in page and 'name="order_no"' not in page
    form = client.get(edit_url, HTTP_HX_REQUEST="true")
    assert form.status_code == 200
    body = form.content.decode()
    assert 'data-testid="edit-fields-form"' in body and 'name="order_no"' in body and "csrfmiddlewaretoken" in body
    assert client.get(edit_url).status_code == 302  # without htmx: back to the ticket, as before
    # A failed save shows the form with its errors, opened, on the page itself.
    bad = client.post(edit_url, {"order_no": "x"})
    assert bad.status_code == 400
    assert 'id="edit-fields"' in bad.content.decode() and 'name="order_no"' in bad.content.decode()


def test_list_search_finds_number_title_phone_and_name(tenant_a, agent_a, complaint, stores):
    from tickets.selectors import ticket_list

    add_tickets(tenant_a, complaint, stores, agent_a, 4)
    with tenant_scope(tenant_a):
        from tickets.models import Ticket

        first, second = Ticket.objects.select_related("customer").order_by("id")[:2]

        def found(term):
            return sorted(ticket_list(user=agent_a, search=term).values_list("pk", flat=True))

        assert found(first.number.lower()) == [first.pk]  # numbers match in any case
        assert found("投诉001") == [second.pk]  # titles contain it
        assert found(second.customer.phone) == [second.pk]
        assert found(first.customer.name) == [first.pk]
        assert found("no such thing") == []


def test_assignee_picker_loads_on_demand(tenant_a, agent_a, engineer_a, complaint, stores, client_for):
    """The picker lists every seated person, so the page leaves it out until opened; a refused
    assignment (someone without a seat here) comes back with the picker open and its error."""
    from tickets.models import Ticket

    add_tickets(tenant_a, complaint, stores, agent_a, 1)
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.get()
        before = ticket.assignee_id
    client = client_for(agent_a)
    page = client.get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    assign_url = reverse("ticket-action", args=[ticket.pk, "assign"])
    assert f'hx-get="{assign_url}"' in page and 'name="assignee"' not in page
    form = client.get(assign_url, HTTP_HX_REQUEST="true")
    assert form.status_code == 200
    body = form.content.decode()
    assert 'data-testid="assign-form"' in body and 'name="assignee"' in body and "csrfmiddlewaretoken" in body
    assert f'<option value="{engineer_a.pk}"' in body
    assert client.get(assign_url).status_code == 302  # without htmx: back to the ticket
    bad = client.post(assign_url, {"assignee": "999999"})
    assert bad.status_code == 400
    bad_body = bad.content.decode()
    assert 'data-testid="assign-form"' in bad_body and f'hx-get="{assign_url}"' not in bad_body
    with tenant_scope(tenant_a):
        assert Ticket.objects.get(pk=ticket.pk).assignee_id == before
