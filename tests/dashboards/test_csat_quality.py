"""The CSAT follow-up (1–2★ alert the store's manager and open a revisit ticket, once), the
per-ticket quality score (a table of facts → score, and its refresh on replies, resolve and
rating), the weekly quality report per team (numbers, visibility, bad weeks/teams, CSV, Monday's
message) and the repeat-complaint banner on the ticket page. Bad input writes nothing."""

import datetime

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboards.csat import csat_followup_open
from dashboards.models import QualityFlag, QualityRule, RatingFollowUp, TicketQualityScore
from dashboards.quality import quality_facts, quality_report_notify, week_label, week_start_of
from dashboards.quality_score import ScoreFacts, score_compute
from dashboards.services import quality_rule_save
from dashboards.tasks import quality_report_task
from notifications.models import Notification
from scrm.services import region_grant, store_grant
from tests.conftest import make_member
from tests.factories import CustomerFactory, TeamFactory
from tickets.models import SatisfactionRating, Ticket, TimelineEvent
from tickets.services import csat_rate, ticket_comment_add, ticket_intake
from workflow.lifecycle import ticket_assign, ticket_status_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def resolved(file_ticket, places, staff):
    def make(store="xuhui"):
        ticket = file_ticket(places[store])
        ticket_status_change(ticket=ticket, action="close", actor=staff["manager"])
        return Ticket.objects.get(pk=ticket.pk)
    return make


def alerts():
    return Notification.objects.filter(event="low_rating")


# --- 1–2★: alert and follow-up, once ---------------------------------------------------------

def test_one_star_alerts_the_store_manager_and_opens_one_revisit(scope_a, staff, resolved, places):
    shop_manager = make_member(scope_a, "regional_manager", "db_shop_mgr")
    store_grant(user=shop_manager, store=places["xuhui"])
    ticket = resolved()
    before = Ticket.objects.count()
    csat_rate(ticket=ticket, score=1, comment="等了三天没人来")
    link = RatingFollowUp.objects.get()
    revisit = link.followup
    assert (link.ticket_id, Ticket.objects.count()) == (ticket.pk, before + 1)
    assert revisit.priority == "high" and revisit.customer_id == ticket.customer_id
    assert revisit.store_id == ticket.store_id and ticket.title in revisit.title
    assert TimelineEvent.objects.filter(ticket=ticket, code="csat.followup_opened",
                                        params__number=revisit.number).count() == 1
    assert TimelineEvent.objects.filter(ticket=revisit, code="csat.followup_of",
                                        params__number=ticket.number).count() == 1
    assert {n.user_id for n in alerts()} == {shop_manager.pk}
    assert "等了三天没人来" in alerts().filter(channel="inapp").get().body
    # The link cannot be reused: a second rating is refused and nothing more is opened or sent.
    with pytest.raises(ValidationError):
        csat_rate(ticket=ticket, score=2, comment="再评一次")
    assert csat_followup_open(rating=SatisfactionRating.objects.get(ticket=ticket)) == link
    assert (RatingFollowUp.objects.count(), Ticket.objects.count(), alerts().count()) == (1, before + 1, 1)


def test_two_stars_without_store_grants_alerts_the_regions_manager(scope_a, staff, resolved, places):
    regional = make_member(scope_a, "regional_manager", "db_rm_north")
    region_grant(user=regional, region=places["north"])
    csat_rate(ticket=resolved("chaoyang"), score=2)
    assert RatingFollowUp.objects.count() == 1
    assert {n.user_id for n in alerts()} == {regional.pk}


def test_an_unpublished_template_still_alerts_but_files_no_revisit(scope_a, staff, resolved, repair):
    ticket = resolved()
    repair.is_active = False
    repair.save()
    before = Ticket.objects.count()
    csat_rate(ticket=ticket, score=1, comment="很失望")
    assert SatisfactionRating.objects.get(ticket=ticket).score == 1  # the rating counts
    assert not RatingFollowUp.objects.exists() and Ticket.objects.count() == before
    assert TimelineEvent.objects.filter(ticket=ticket, code="csat.followup_failed").count() == 1
    assert {n.user_id for n in alerts()} == {staff["manager"].pk}


@pytest.mark.parametrize("score", [3, 4, 5])
def test_three_to_five_stars_open_nothing(scope_a, staff, resolved, score):
    ticket = resolved()
    before = Ticket.objects.count()
    csat_rate(ticket=ticket, score=score)
    assert not RatingFollowUp.objects.exists() and not alerts().exists()
    assert Ticket.objects.count() == before
    assert TicketQualityScore.objects.get(ticket=ticket).parts[-1] == {
        "code": "rating", "n": score, "points": -10 if score == 3 else 0}


@pytest.mark.parametrize("score, comment", [(0, ""), (6, ""), ("一", ""), (1, "差" * 100_000)])
def test_bad_ratings_write_nothing(scope_a, staff, resolved, score, comment):
    ticket = resolved()
    tickets, events = Ticket.objects.count(), TimelineEvent.objects.count()
    scores = list(TicketQualityScore.objects.values_list("ticket_id", "score", "computed_at"))
    with pytest.raises(ValidationError):
        csat_rate(ticket=ticket, score=score, comment=comment)
    assert not SatisfactionRating.objects.exists() and not RatingFollowUp.objects.exists()
    assert (Ticket.objects.count(), TimelineEvent.objects.count()) == (tickets, events)
    assert list(TicketQualityScore.objects.values_list("ticket_id", "score", "computed_at")) == scores
    assert not alerts().exists()


def test_tampered_and_expired_links_open_nothing(scope_a, staff, resolved, client):
    ticket = resolved()
    url = reverse("ticket-track-rate", args=[ticket.tracking_token])
    assert client.post(url.replace(ticket.tracking_token[-6:], "XXXXXX"), {"score": "1"}).status_code == 404
    with time_machine.travel(timezone.now() + datetime.timedelta(days=31)):
        assert client.post(url, {"score": "1"}).status_code == 400
    assert client.post(url, {"score": "1", "comment": "差" * 100_000}).status_code == 400
    assert not RatingFollowUp.objects.exists() and not alerts().exists() and not SatisfactionRating.objects.exists()
    # The real link, once: the follow-up is opened from the tracking page.
    assert client.post(url, {"score": "1", "comment": "太慢"}).status_code == 302
    assert client.post(url, {"score": "1"}).status_code == 400
    assert RatingFollowUp.objects.count() == 1


def test_the_follow_up_shows_on_both_ticket_pages_and_the_dashboard(scope_a, staff, resolved, client_for):
    ticket = resolved()
    csat_rate(ticket=ticket, score=1, comment="态度差")
    revisit = RatingFollowUp.objects.get().followup
    client = client_for(staff["manager"])
    panel = client.get(reverse("dashboards-ticket-panel", args=[ticket.pk])).content.decode()
    assert 'data-testid="followup-link"' in panel and revisit.number in panel
    other = client.get(reverse("dashboards-ticket-panel", args=[revisit.pk])).content.decode()
    assert 'data-testid="revisit-of"' in other and ticket.number in other
    assert 'data-testid="repeat-banner"' not in other  # the rated ticket is not a repeat of its revisit
    page = client.get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    assert reverse("dashboards-ticket-panel", args=[ticket.pk]) in page
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert 'data-testid="csat-followup"' in dashboard and revisit.number in dashboard


# --- the quality score ------------------------------------------------------------------------

@pytest.mark.parametrize("facts, score, points", [
    (ScoreFacts(), 100, [0, 0, 0, 0, 0]),
    (ScoreFacts(flagged=2), 90, [-10, 0, 0, 0, 0]),
    (ScoreFacts(flagged=9), 80, [-20, 0, 0, 0, 0]),  # capped at −20
    (ScoreFacts(forbidden=1, required_missing=2), 65, [0, -15, -20, 0, 0]),
    (ScoreFacts(forbidden=5), 55, [0, -45, 0, 0, 0]),  # capped at −45
    (ScoreFacts(finished=True, handling_minutes=300, target_minutes=240, late=True), 80, [0, 0, 0, -20, 0]),
    (ScoreFacts(finished=False, handling_minutes=None, late=True), 100, [0, 0, 0, 0, 0]),  # open: not judged
    (ScoreFacts(rating=1), 70, [0, 0, 0, 0, -30]),
    (ScoreFacts(rating=2), 80, [0, 0, 0, 0, -20]),
    (ScoreFacts(rating=5), 100, [0, 0, 0, 0, 0]),
    (ScoreFacts(flagged=4, forbidden=3, required_missing=3, finished=True, late=True, rating=1), 0,
     [-20, -45, -30, -20, -30]),  # never below 0
])
def test_score_compute(facts, score, points):
    total, parts = score_compute(facts)
    assert total == score
    assert [p.points for p in parts] == points
    assert [p.code for p in parts] == ["flag", "forbidden", "required", "handling", "rating"]


def test_the_score_follows_replies_resolve_and_rating(scope_a, staff, file_ticket, places, client_for,
                                                      django_assert_max_num_queries):
    quality_rule_save(tenant=scope_a, name="禁用语", kind="forbidden", phrases="不知道")
    quality_rule_save(tenant=scope_a, name="礼貌用语", kind="required", phrases="您好")
    ticket = file_ticket(places["xuhui"])
    ticket_comment_add(ticket=ticket, body="不知道（内部）", actor=staff["agent"], is_public=False, notify=False)
    assert not TicketQualityScore.objects.exists()  # an internal note is not judged
    ticket_comment_add(ticket=ticket, body="这个我不知道", actor=staff["agent"], is_public=True, notify=False)
    row = TicketQualityScore.objects.get(ticket=ticket)
    assert (row.score, row.findings, row.finished_at) == (85, 1, None)
    ticket_status_change(ticket=ticket, action="close", actor=staff["manager"])
    row.refresh_from_db()
    assert (row.score, row.findings) == (75, 2) and row.finished_at is not None  # + the missing 您好
    handling = next(p for p in row.parts if p["code"] == "handling")
    assert handling["n"] >= 0 and handling["points"] == 0 and handling["target"] == 72 * 60
    assert QualityFlag.objects.filter(ticket=ticket).count() == 2
    csat_rate(ticket=ticket, score=3)
    row.refresh_from_db()
    assert row.score == 65
    client = client_for(staff["manager"])
    with django_assert_max_num_queries(14):
        panel = client.get(reverse("dashboards-ticket-panel", args=[ticket.pk]))
    body = panel.content.decode()
    assert 'data-testid="quality-score">65<' in body and body.count("<li class=\"d-flex") == 5


def test_a_late_ticket_loses_handling_points(scope_a, staff, file_ticket, places):
    ticket = file_ticket(places["xuhui"])
    with time_machine.travel(timezone.now() + datetime.timedelta(days=4)):
        ticket_status_change(ticket=ticket, action="close", actor=staff["manager"])
    row = TicketQualityScore.objects.get(ticket=ticket)
    assert row.score == 80 and next(p for p in row.parts if p["code"] == "handling")["points"] == -20


# --- repeat complaints ----------------------------------------------------------------------------

def test_repeat_banner_links_the_earlier_tickets(scope_a, staff, repair, places, client_for, admin_b):
    customer = CustomerFactory(tenant=scope_a)
    other = CustomerFactory(tenant=scope_a)

    def file(who, when):
        with time_machine.travel(when):
            return ticket_intake(tenant=scope_a, source="phone", template=repair, data={}, customer=who,
                                 title="冷柜又坏了", partial=True, store=places["xuhui"], region=places["east"])
    now = timezone.now()
    old = file(customer, now - datetime.timedelta(days=45))  # 35 days before the next: outside the 30
    first = file(customer, now - datetime.timedelta(days=10))
    file(other, now - datetime.timedelta(days=5))  # another customer
    latest = file(customer, now)
    client = client_for(staff["manager"])
    panel = client.get(reverse("dashboards-ticket-panel", args=[latest.pk])).content.decode()
    assert 'data-testid="repeat-banner"' in panel
    assert reverse("ticket-detail", args=[first.pk]) in panel and old.number not in panel
    assert 'data-testid="repeat-banner"' not in client.get(
        reverse("dashboards-ticket-panel", args=[first.pk])).content.decode()
    assert client_for(admin_b).get(reverse("dashboards-ticket-panel", args=[latest.pk])).status_code == 404


# --- the weekly report ----------------------------------------------------------------------------

@pytest.fixture
def two_teams(scope_a, staff, places):
    """Two engineers in two teams (华东 and 华北), each with resolved tickets scored this week."""
    east_eng = make_member(scope_a, "engineer", "db_eng_east")
    north_eng = make_member(scope_a, "engineer", "db_eng_north")
    lead = make_member(scope_a, "agent", "db_lead")
    east = TeamFactory(tenant=scope_a, name="华东一组", region=places["east"], lead=lead)
    north = TeamFactory(tenant=scope_a, name="华北一组", region=places["north"])
    east_eng.staff_profiles.get().teams.add(east)
    north_eng.staff_profiles.get().teams.add(north)
    return {"east": east, "north": north, "east_eng": east_eng, "north_eng": north_eng, "lead": lead}


def _finish(ticket, handler, staff, comment=""):
    from workflow.lifecycle import ticket_assign
    ticket_assign(ticket=ticket, assignee=handler, actor=staff["manager"])
    if comment:
        ticket_comment_add(ticket=ticket, body=comment, actor=handler, is_public=True, notify=False)
    ticket_status_change(ticket=Ticket.objects.get(pk=ticket.pk), action="close", actor=staff["manager"])


def test_weekly_report_numbers_and_visibility(scope_a, staff, file_ticket, places, two_teams, client_for,
                                              django_assert_max_num_queries):
    quality_rule_save(tenant=scope_a, name="推诿", kind="flag", phrases="你自己")
    quality_rule_save(tenant=scope_a, name="禁用语", kind="forbidden", phrases="不知道")
    _finish(file_ticket(places["xuhui"]), two_teams["east_eng"], staff, "你自己看说明书，我不知道")  # 80
    _finish(file_ticket(places["xuhui"]), two_teams["east_eng"], staff)  # 100
    _finish(file_ticket(places["chaoyang"]), two_teams["north_eng"], staff, "你自己去门店")  # 95
    week = week_label(week_start_of(timezone.localdate()))
    client = client_for(staff["manager"])
    with django_assert_max_num_queries(16):
        response = client.get(reverse("quality-report"), {"week": week})
    assert response.status_code == 200
    report = response.context["report"]
    assert report["total"]["n"] == 3 and round(report["total"]["avg"], 2) == round(275 / 3, 2)
    assert [(t["team__name"], t["n"], t["avg"], t["low"], t["findings"]) for t in report["teams"]] == [
        ("华东一组", 2, 90.0, 80, 2), ("华北一组", 1, 95.0, 95, 1)]
    assert [(r["rule__name"], r["n"]) for r in report["rules"]] == [("推诿", 2), ("禁用语", 1)]
    assert [item["row"].score for item in report["lowest"]] == [80, 95, 100]
    one = client.get(reverse("quality-report"), {"week": week, "team": two_teams["north"].pk}).context["report"]
    assert one["total"]["n"] == 1 and [(r["rule__name"], r["n"]) for r in one["rules"]] == [("推诿", 1)]
    # A regional manager of 华东 sees only 华东's team.
    regional = make_member(scope_a, "regional_manager", "db_rm_east")
    region_grant(user=regional, region=places["east"])
    mine = client_for(regional).get(reverse("quality-report"), {"week": week}).context["report"]
    assert [t["team__name"] for t in mine["teams"]] == ["华东一组"] and mine["total"]["n"] == 2
    csv_text = client.get(reverse("quality-report"), {"week": week, "format": "csv", "table": "teams"}
                          ).content.decode("utf-8-sig")
    assert csv_text.splitlines()[1].startswith("华东一组,2,90.0,80,2")
    tickets_csv = client.get(reverse("quality-report"), {"week": week, "format": "csv", "table": "tickets"})
    assert len(tickets_csv.content.decode("utf-8-sig").splitlines()) == 4


@pytest.mark.parametrize("params", [
    {"week": "2026-53"}, {"week": "2026-W60"}, {"week": "x" * 5000}, {"week": "2099-W01"}, {"week": "1990-W01"},
    {"team": "999999"}, {"team": "abc"}, {"format": "xlsx"}, {"format": "csv", "table": "secrets"},
])
def test_weekly_report_bad_input_is_a_clear_400(scope_a, staff, client_for, params):
    response = client_for(staff["manager"]).get(reverse("quality-report"), params)
    assert response.status_code == 400


def test_another_tenants_team_is_refused(scope_a, staff, client_for, tenant_b):
    from scrm.tenancy import tenant_scope
    with tenant_scope(tenant_b):
        team_b = TeamFactory(tenant=tenant_b, name="B 组")
    response = client_for(staff["manager"]).get(reverse("quality-report"), {"team": team_b.pk})
    assert response.status_code == 400


def test_monday_message_once_per_team_and_week(scope_a, staff, file_ticket, places, two_teams):
    _finish(file_ticket(places["xuhui"]), two_teams["east_eng"], staff)
    _finish(file_ticket(places["chaoyang"]), two_teams["north_eng"], staff)
    monday = week_start_of(timezone.localdate())
    assert quality_report_notify(tenant=scope_a, monday=monday) == 2
    rows = Notification.objects.filter(event="quality_report", channel="inapp")
    east = rows.filter(body__contains="华东一组")
    assert {n.user_id for n in east} == {staff["manager"].pk, two_teams["lead"].pk}
    assert rows.filter(body__contains="华北一组").count() == 1
    count = rows.count()
    assert quality_report_task.apply(kwargs={"tenant_id": scope_a.pk, "monday": monday.isoformat()}).get() == 2
    assert rows.count() == count  # sent once per team and week
    # Last week had nothing finished: nothing is sent.
    assert quality_report_notify(tenant=scope_a, monday=monday - datetime.timedelta(days=7)) == 0


# --- the rescore of a public reply: incremental, and within a fixed query budget ---------------

@pytest.fixture
def three_rules(scope_a):
    quality_rule_save(tenant=scope_a, name="推诿", kind="flag", phrases="你自己")
    quality_rule_save(tenant=scope_a, name="禁用语", kind="forbidden", phrases="不知道")
    quality_rule_save(tenant=scope_a, name="礼貌用语", kind="required", phrases="您好")


def test_a_reply_scores_as_a_full_rescan_would(scope_a, staff, file_ticket, places, two_teams, three_rules):
    ticket = file_ticket(places["xuhui"])
    ticket_assign(ticket=ticket, assignee=two_teams["east_eng"], actor=staff["manager"])
    ticket = Ticket.objects.get(pk=ticket.pk)
    for body in ("你自己看说明书", "不知道，你自己去问", "您好", "这个真不知道"):
        ticket_comment_add(ticket=ticket, body=body, actor=two_teams["east_eng"], is_public=True, notify=False)
        row = TicketQualityScore.objects.get(ticket=ticket)
        full, _flags, team = quality_facts(ticket=ticket)  # every reply read again
        total, parts = score_compute(full)
        assert (row.score, row.parts, row.team_id) == (total, [p.as_dict() for p in parts], team)
    assert (row.score, row.findings, row.team_id) == (60, 4, two_teams["east"].pk)  # 2 flagged, 2 forbidden
    assert QualityFlag.objects.filter(ticket=ticket).count() == 4
    # A rule switched off stops counting at the next reply, as a full rescan would.
    rule = QualityRule.objects.get(name="禁用语")
    quality_rule_save(tenant=scope_a, name=rule.name, kind=rule.kind, phrases="不知道", rule=rule, is_active=False)
    ticket_comment_add(ticket=ticket, body="好的", actor=two_teams["east_eng"], is_public=True, notify=False)
    assert TicketQualityScore.objects.get(ticket=ticket).score == 90


def test_a_public_reply_rescores_within_a_fixed_query_budget(scope_a, staff, file_ticket, places, two_teams,
                                                             three_rules, django_assert_max_num_queries):
    ticket = file_ticket(places["xuhui"])
    ticket_assign(ticket=ticket, assignee=two_teams["east_eng"], actor=staff["manager"])
    ticket = Ticket.objects.get(pk=ticket.pk)
    ticket_comment_add(ticket=ticket, body="你自己看说明书", actor=staff["agent"], is_public=True, notify=False)
    with CaptureQueriesContext(connection) as note:
        ticket_comment_add(ticket=ticket, body="内部备注", actor=staff["agent"], is_public=False, notify=False)
    with CaptureQueriesContext(connection) as reply:
        ticket_comment_add(ticket=ticket, body="好的", actor=staff["agent"], is_public=True, notify=False)
    assert len(note) == 4
    # The note's 4 statements (savepoint, event, ticket touched, release) and for the rescore:
    # the config stamp (the rules come from the tenant's cached configuration), the flags counted
    # (no earlier reply is read again), the ticket's facts (SLA, rating, handler's team) in one
    # read, the score's upsert in one statement — no savepoint of its own.
    assert len(reply) == 8
    with django_assert_max_num_queries(9):  # + the new reply's two flags, one insert
        ticket_comment_add(ticket=ticket, body="不知道，你自己去问", actor=staff["agent"], is_public=True, notify=False)
    assert TicketQualityScore.objects.get(ticket=ticket).score == 75
