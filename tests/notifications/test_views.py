"""The managers' template pages (list, edit with the sandbox check at save, htmx preview, reset),
the preferences page, and the outbox admin with its dead letters and retry. Every bad input gets
its clear error on the field and writes nothing."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from notifications import services
from notifications.models import Notification, NotificationTemplate, Preference
from scrm.tenancy import tenant_scope
from tests.notifications.conftest import CHANNEL_SETTINGS
from tickets.services import ticket_intake
from workflow.lifecycle import ticket_assign

LIST = reverse("notification-template-list")
EDIT = reverse("notification-template-edit")
PREVIEW = reverse("notification-template-preview")
RESET = reverse("notification-template-reset")
PREFERENCES = reverse("notification-preferences")


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


def template_count(tenant):
    with tenant_scope(tenant):
        return NotificationTemplate.objects.count()


def field_errors(response, field):
    """The errors the page shows under one field (data-field-error marks them)."""
    form = response.context["form"]
    return form.errors.get(field, [])


def template_post(**overrides):
    data = {"event": "ticket_assigned", "channel": "wecom", "language": "zh-hans",
            "subject": "派单：{{ ticket_number }}",
            "body": "{{ actor_name }} 派单给您：{{ ticket_title }}\n{{ ticket_url }}",
            "sms_template_code": ""}
    data.update(overrides)
    return data


# --- template list ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_every_slot_with_the_built_in_default_where_none_is_saved(
        tenant_a, manager_a, client_for, django_assert_max_num_queries):
    with tenant_scope(tenant_a):
        services.notification_template_save(tenant=tenant_a, **template_post())
    client = client_for(manager_a)
    with django_assert_max_num_queries(12):
        response = client.get(LIST)
    assert response.status_code == 200
    slots = response.context["slots"]
    from notifications.models import Event

    assert len(slots) == len(Event) * 5 * 2  # events × channels × languages
    saved = [s for s in slots if not s.is_default]
    assert [(s.event, s.channel, s.language) for s in saved] == [("ticket_assigned", "wecom", "zh-hans")]
    html = response.content.decode()
    assert html.count('data-testid="slot-saved"') == 1
    assert html.count('data-testid="slot-default"') == len(Event) * 5 * 2 - 1
    assert "Assigned to you: {{ ticket_number }}" in html  # the built-in English wording

    narrowed = client.get(LIST, {"event": "ticket_created", "channel": "sms", "language": "nonsense"})
    assert [(s.event, s.channel) for s in narrowed.context["slots"]] == [("ticket_created", "sms")] * 2


@pytest.mark.django_db
def test_pages_need_their_permission(tenant_a, engineer_a, client_for):
    client = client_for(engineer_a)  # engineers do not edit templates
    assert client.get(LIST).status_code == 403
    assert client.get(EDIT).status_code == 403
    assert client.post(EDIT, template_post()).status_code == 403
    assert client.post(PREVIEW, template_post()).status_code == 403
    assert template_count(tenant_a) == 0
    assert client.get(PREFERENCES).status_code == 200  # but everyone with a seat sets their preferences


# --- edit -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_edit_shows_the_built_in_wording_and_saves_a_valid_template(tenant_a, manager_a, client_for):
    client = client_for(manager_a)
    response = client.get(EDIT, {"event": "ticket_created", "channel": "email", "language": "en"})
    assert response.status_code == 200
    assert response.context["slot"].is_default
    assert response.context["form"].initial["subject"] == "Ticket received: {{ ticket_number }}"

    response = client.post(EDIT, template_post())
    assert response.status_code == 302
    assert response["Location"] == EDIT + "?event=ticket_assigned&channel=wecom&language=zh-hans"
    with tenant_scope(tenant_a):
        saved = NotificationTemplate.objects.get()
    assert (saved.event, saved.channel, saved.language, saved.subject) == (
        "ticket_assigned", "wecom", "zh-hans", "派单：{{ ticket_number }}")

    response = client.post(EDIT, template_post(subject="改了"))  # the same slot again: replaced, not added
    assert response.status_code == 302
    assert template_count(tenant_a) == 1
    page = client.get(response["Location"])
    assert not page.context["slot"].is_default
    assert 'data-testid="template-reset"' in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"body": ""}, "body", "This field is required."),
        ({"body": "第一行\n{% if ticket_title %}没有结束"}, "body", "Line 2"),
        ({"body": "您好\n\n{{ password }}"}, "body", "Line 3: unknown variable “password”"),
        ({"subject": "{{ ticket.customer.phone }}"}, "subject", "attribute access"),
        ({"body": "x\n{% load static %}"}, "body", "Line 2: tag libraries cannot be loaded"),
        ({"body": "{% include 'base.html' %}"}, "body", "the tag “include” is not allowed"),
        ({"body": "{{ ticket_title|safe }}"}, "body", "filter “safe” is not allowed"),
        ({"body": "长" * 4001}, "body", "at most 4000 characters"),
        ({"subject": "x" * 201}, "subject", "at most 200 characters"),
        ({"channel": "sms"}, "sms_template_code", "templates the provider approved"),
        ({"channel": "sms", "sms_template_code": "SMS 1; DROP"}, "sms_template_code", "letters, digits"),
        ({"channel": "sms", "sms_template_code": "S" * 65}, "sms_template_code", "at most 64 characters"),
        ({"event": "ticket_exploded"}, "event", "Select a valid choice"),
        ({"channel": "none"}, "channel", "Select a valid choice"),
        ({"channel": ""}, "channel", "This field is required."),
        ({"language": "fr"}, "language", "Select a valid choice"),
    ],
)
def test_edit_refuses_bad_input_on_the_field_and_writes_nothing(tenant_a, manager_a, client_for, overrides, field,
                                                                message):
    response = client_for(manager_a).post(EDIT, template_post(**overrides))
    assert response.status_code == 400
    errors = field_errors(response, field)
    assert errors and message in errors[0], errors
    assert f'data-field-error="{field}"' in response.content.decode()
    assert template_count(tenant_a) == 0


@pytest.mark.django_db
def test_a_tenant_saves_only_its_own_templates(tenant_a, tenant_b, manager_a, admin_b, client_for):
    client_for(admin_b).post(EDIT, template_post(tenant=tenant_a.pk))
    assert template_count(tenant_a) == 0
    assert template_count(tenant_b) == 1


# --- preview ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_preview_renders_with_sample_variables_and_shows_errors_in_place(tenant_a, manager_a, client_for):
    client = client_for(manager_a)
    response = client.post(PREVIEW, template_post(language="en"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "TS-20261123-0001" in html and "Freezer not cooling" in html
    assert 'data-testid="preview-body"' in html

    # The preview of an SMS wording needs no code yet; saving it will.
    assert "preview-errors" not in client.post(PREVIEW, template_post(channel="sms")).content.decode()

    response = client.post(PREVIEW, template_post(body="好\n{{ bad_name }}"))
    assert response.status_code == 200  # htmx swaps it in like a result
    html = response.content.decode()
    assert 'data-testid="preview-errors"' in html
    assert "Line 2: unknown variable “bad_name”" in html
    response = client.post(PREVIEW, template_post(body="x" * 5000))
    assert "at most 4000 characters" in response.content.decode()
    assert template_count(tenant_a) == 0


# --- reset ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reset_deletes_a_saved_template_and_refuses_other_tenants_ids(tenant_a, tenant_b, manager_a, admin_b,
                                                                      client_for):
    with tenant_scope(tenant_a):
        mine = services.notification_template_save(tenant=tenant_a, **template_post())
    with tenant_scope(tenant_b):
        theirs = services.notification_template_save(tenant=tenant_b, **template_post())
    client = client_for(manager_a)
    for bad in (theirs.pk, "", "abc", "-1", "9" * 40):
        assert client.post(RESET, {"id": bad}).status_code == 404, bad
    assert client.post(RESET).status_code == 404
    assert client.get(RESET).status_code == 405
    assert template_count(tenant_a) == 1 and template_count(tenant_b) == 1

    response = client.post(RESET, {"id": mine.pk})
    assert response.status_code == 302
    assert template_count(tenant_a) == 0
    assert template_count(tenant_b) == 1
    assert client_for(admin_b).post(RESET, {"id": mine.pk}).status_code == 404


# --- preferences ------------------------------------------------------------------------


def preference_post(**rows):
    """Every staff event with the defaults, some replaced: rows = {event: {field: value}}."""
    from notifications.models import STAFF_EVENTS

    data = {}
    for event in STAFF_EVENTS:
        row = {"channels": ["wecom"], "min_priority": "low", "quiet_start": "", "quiet_end": ""}
        row.update(rows.get(event.value, {}))
        for field, value in row.items():
            data[f"{event.value}-{field}"] = value
    return data


def preferences(tenant, user):
    with tenant_scope(tenant):
        return {p.event: p for p in Preference.objects.filter(user=user)}


@pytest.mark.django_db
def test_preferences_page_saves_channels_priority_and_quiet_hours(tenant_a, engineer_a, client_for):
    client = client_for(engineer_a)
    page = client.get(PREFERENCES)
    assert page.status_code == 200
    from notifications.models import STAFF_EVENTS

    assert len(page.context["forms"]) == len(STAFF_EVENTS)
    assert page.context["forms"][0].initial["channels"] == ["wecom"]

    response = client.post(PREFERENCES, preference_post(ticket_assigned={
        "channels": ["sms", "wecom"], "min_priority": "urgent", "quiet_start": "22:00", "quiet_end": "07:30"}))
    assert response.status_code == 302
    saved = preferences(tenant_a, engineer_a)
    assert len(saved) == len(STAFF_EVENTS)
    assigned = saved["ticket_assigned"]
    assert (assigned.channels, assigned.min_priority, assigned.quiet_start, assigned.quiet_end) == (
        ["sms", "wecom"], "urgent", datetime.time(22, 0), datetime.time(7, 30))
    page = client.get(PREFERENCES)
    form = next(f for f in page.context["forms"] if f.event == "ticket_assigned")
    assert form.initial["min_priority"] == "urgent"

    client.post(PREFERENCES, preference_post(ticket_assigned={"channels": []}))
    assert preferences(tenant_a, engineer_a)["ticket_assigned"].channels == []  # the bell only


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"channels": ["fax"]}, "channels", "Select a valid choice"),
        ({"channels": ["inapp"]}, "channels", "Select a valid choice"),
        ({"min_priority": "extreme"}, "min_priority", "Select a valid choice"),
        ({"min_priority": ""}, "min_priority", "This field is required."),
        ({"quiet_start": "25:99", "quiet_end": "07:00"}, "quiet_start", "Enter a valid time."),
        ({"quiet_start": "x" * 5000, "quiet_end": "07:00"}, "quiet_start", "Enter a valid time."),
        ({"quiet_start": "22:00"}, "quiet_end", "both ends"),
        ({"quiet_end": "07:00"}, "quiet_start", "both ends"),
        ({"quiet_start": "07:00", "quiet_end": "07:00"}, "quiet_end", "another time"),
    ],
)
def test_preferences_refuse_bad_input_on_the_field_and_write_nothing(tenant_a, engineer_a, client_for, row, field,
                                                                     message):
    response = client_for(engineer_a).post(PREFERENCES, preference_post(ticket_commented=row))
    assert response.status_code == 400
    form = next(f for f in response.context["forms"] if f.event == "ticket_commented")
    assert message in form.errors[field][0], form.errors
    assert f'data-field-error="ticket_commented-{field}"' in response.content.decode()
    assert preferences(tenant_a, engineer_a) == {}


@pytest.mark.django_db
def test_preferences_are_only_ever_the_signed_in_users(tenant_a, tenant_b, engineer_a, agent_a, admin_b,
                                                      client_for):
    data = preference_post(ticket_assigned={"channels": ["email"]})
    data.update(user=agent_a.pk, tenant=tenant_b.pk)
    assert client_for(engineer_a).post(PREFERENCES, data).status_code == 302
    assert set(preferences(tenant_a, engineer_a)) and preferences(tenant_a, agent_a) == {}
    assert preferences(tenant_b, engineer_a) == {}
    # The service refuses a user without a seat in the tenant (another tenant's admin), writing nothing.
    with tenant_scope(tenant_a), pytest.raises(ValidationError):
        services.preferences_save(tenant=tenant_a, user=admin_b, rows={"ticket_assigned": {
            "channels": [], "min_priority": "low", "quiet_start": None, "quiet_end": None}})
    assert preferences(tenant_a, admin_b) == {}


# --- admin: dead letters and retry -------------------------------------------------------


@pytest.mark.django_db
def test_admin_lists_dead_letters_and_retries_them(tenant_a, admin_a, agent_a, client_for,
                                                   django_capture_on_commit_callbacks):
    from tests.factories import published_template
    from tests.notifications.stubs import WeComStub

    tenant_a.settings = dict(CHANNEL_SETTINGS)
    tenant_a.save()
    with tenant_scope(tenant_a):
        from scrm.models import StaffProfile

        StaffProfile.objects.filter(user=agent_a).update(wecom_userid="li.jingli")
        ticket = ticket_intake(tenant=tenant_a, source="phone", template=published_template(tenant_a),
                               data={"order_no": "A1"}, title="死信测试")
        ticket_assign(ticket=ticket, assignee=agent_a, actor=admin_a)
        dead = Notification.objects.get(channel="wecom")
        Notification.objects.filter(pk=dead.pk).update(
            status="dead", attempts=5, next_attempt_at=None,
            last_error="The provider answered with an HTTP error. [http_503]")
    client = client_for(admin_a)
    changelist = reverse("admin:notifications_notification_changelist")
    response = client.get(changelist, {"status__exact": "dead"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "http_503" in html
    assert list(response.context["cl"].result_list) == [dead]
    assert client.get(changelist, {"status__exact": "sent"}).context["cl"].result_list[0].channel == "inapp"

    with WeComStub(corp_id=CHANNEL_SETTINGS["wecom"]["corp_id"], secret=CHANNEL_SETTINGS["wecom"]["secret"],
                   agent_id=CHANNEL_SETTINGS["wecom"]["agent_id"]) as stub, stub.installed(), \
            django_capture_on_commit_callbacks(execute=True):
        response = client.post(changelist + "?status__exact=dead",
                               {"action": "retry", "_selected_action": [dead.pk]}, follow=True)
    assert response.status_code == 200
    assert "1 notification queued again." in response.content.decode()
    with tenant_scope(tenant_a):
        dead.refresh_from_db()
    assert (dead.status, dead.attempts, dead.last_error) == ("sent", 1, "")
    assert len(stub.calls(WeComStub.SEND_PATH)) == 1


@pytest.mark.django_db
def test_admin_template_form_runs_the_same_sandbox_check(tenant_a, admin_a, client_for):
    add = reverse("admin:notifications_notificationtemplate_add")
    data = {"event": "ticket_created", "channel": "email", "language": "en", "subject": "Hi",
            "body": "Hello\n{{ ticket.customer.phone }}", "sms_template_code": ""}
    response = client_for(admin_a).post(add, data)
    assert response.status_code == 200
    assert "Line 2: “ticket.customer.phone”: attribute access" in response.content.decode()
    assert template_count(tenant_a) == 0
    response = client_for(admin_a).post(add, {**data, "body": "Hello {{ customer_name }}"})
    assert response.status_code == 302
    assert template_count(tenant_a) == 1
