"""The ticket list's background export (ExportJob): started from the offer, run by the Celery
task (eager here) in keyset batches, its progress, the CSV and XLSX it writes, the download only
for the person who asked and only until it expires, the cleanup, and refusals that write nothing."""

import csv
import datetime
import io

import openpyxl
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboards import export_services
from dashboards.export_services import export_job_create, export_job_run, exports_clean
from dashboards.models import ExportJob
from scrm.services import store_grant
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # export files go to VAR_DIR/exports


@pytest.fixture
def start(client_for, django_capture_on_commit_callbacks):
    """start(user, **fields): POST the offer's form as that user; the job runs on commit."""
    def post(user, **fields):
        client = client_for(user)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("export-start"), {"format": "csv", **fields})
        return client, response
    return post


def csv_rows(data):
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_a_small_job_end_to_end(scope_a, staff, file_ticket, places, start, client_for, settings):
    for n in range(3):
        file_ticket(places["xuhui"], title=f"徐汇第{n}单")
    file_ticket(places["chaoyang"], title="=cmd|' /C calc'!A0")
    settings.EXPORT_SYNC_MAX_ROWS = 1
    client, response = start(staff["manager"], format="csv")
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("export-detail", args=[job.pk])
    assert (job.state, job.rows_done, job.rows_total, job.requested_by) == ("done", 4, 4, staff["manager"])
    page = client.get(response.url).content.decode()
    assert 'data-state="done"' in page and reverse("export-progress", args=[job.pk]) not in page  # no polling
    assert reverse("export-download", args=[job.pk]) in page
    download = client.get(reverse("export-download", args=[job.pk]))
    body = b"".join(download.streaming_content)
    assert download.status_code == 200 and body.startswith("\ufeff".encode())
    assert 'attachment; filename="tickets-' in download["Content-Disposition"]
    written = csv_rows(body)
    # The same file as the export in the request, row for row (newest first).
    settings.EXPORT_SYNC_MAX_ROWS = 5000
    direct = client.get(reverse("ticket-export") + "?format=csv")
    assert written == csv_rows(direct.content)
    assert written[0][:3] == ["工单号", "标题", "状态"] and written[1][1] == "'=cmd|' /C calc'!A0"
    assert [row[1] for row in written[2:]] == ["徐汇第2单", "徐汇第1单", "徐汇第0单"]
    listing = client.get(reverse("export-list")).content.decode()
    assert reverse("export-detail", args=[job.pk]) in listing


def test_progress_is_written_after_every_batch(scope_a, staff, file_ticket, places, monkeypatch):
    for _n in range(5):
        file_ticket(places["xuhui"])
    job = ExportJob.objects.create(tenant=scope_a, requested_by=staff["manager"], format="csv", rows_total=5)
    seen = []
    batches = export_services.reads.export_batches

    def watched(qs, **kwargs):
        for batch in batches(qs, **kwargs):
            seen.append(ExportJob.objects.values_list("state", "rows_done", "rows_total").get(pk=job.pk))
            yield batch
    monkeypatch.setattr(export_services.reads, "export_batches", watched)
    export_job_run(job_id=job.pk, batch_size=2)
    assert seen == [("running", 0, 5), ("running", 2, 5), ("running", 4, 5)]
    job.refresh_from_db()
    assert (job.state, job.rows_done, job.rows_total, job.percent) == ("done", 5, 5, 100)
    assert export_job_run(job_id=job.pk) is None  # a second delivery of the task does nothing


def test_the_progress_fragment_polls_until_the_job_is_done(scope_a, staff, file_ticket, places, client_for):
    file_ticket(places["xuhui"])
    job = ExportJob.objects.create(tenant=scope_a, requested_by=staff["manager"], format="xlsx", rows_total=1)
    client = client_for(staff["manager"])
    queued = client.get(reverse("export-progress", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in queued and "0%" in queued
    export_job_run(job_id=job.pk)
    done = client.get(reverse("export-progress", args=[job.pk])).content.decode()
    assert "hx-trigger" not in done and "100%" in done and reverse("export-download", args=[job.pk]) in done


def test_xlsx_content(scope_a, staff, file_ticket, places, client_for):
    file_ticket(places["xuhui"], title="冷柜\x07不制冷")  # a control character a sheet cannot hold
    file_ticket(places["chaoyang"], title="上菜太慢")
    job = export_job_create(user=staff["manager"], tenant=scope_a, fmt="xlsx", params={"store": str(
        places["xuhui"].pk)})
    export_job_run(job_id=job.pk)
    response = client_for(staff["manager"]).get(reverse("export-download", args=[job.pk]))
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    values = list(sheet.values)
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert values[0][:2] == ("工单号", "标题") and len(values) == 2
    assert values[1][1] == "冷柜不制冷" and values[1][6] == "徐汇店"


def test_the_job_exports_what_the_asker_may_see(scope_a, staff, file_ticket, places, client_for):
    from workflow.lifecycle import ticket_assign

    file_ticket(places["xuhui"], title="徐汇的单")
    chaoyang = file_ticket(places["chaoyang"], title="朝阳的单")
    regional = make_member(scope_a, "regional_manager", "ex_regional")
    store_grant(user=regional, store=places["xuhui"])
    ticket_assign(ticket=chaoyang, assignee=staff["engineer"], actor=staff["manager"])
    for user, titles in ((regional, ["徐汇的单"]), (staff["engineer"], ["朝阳的单"])):
        job = export_job_create(user=user, tenant=scope_a, fmt="csv", params={})
        export_job_run(job_id=job.pk)
        body = b"".join(client_for(user).get(reverse("export-download", args=[job.pk])).streaming_content)
        assert [row[1] for row in csv_rows(body)[1:]] == titles


def test_the_link_expires_and_the_cleanup_deletes_the_file(scope_a, staff, file_ticket, places, client_for):
    file_ticket(places["xuhui"])
    job = export_job_create(user=staff["manager"], tenant=scope_a, fmt="csv", params={})
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    path = export_services.export_path(job)
    client = client_for(staff["manager"])
    assert path.exists() and job.expires_at == job.finished_at + datetime.timedelta(hours=24)
    assert exports_clean() == 0 and path.exists()  # not yet
    with time_machine.travel(job.expires_at + datetime.timedelta(minutes=1), tick=False):
        expired = client.get(reverse("export-download", args=[job.pk]))
        assert expired.status_code == 404 and "下载链接已于" in expired.content.decode()  # "…expired at"
        assert exports_clean() == 1
    job.refresh_from_db()
    assert not path.exists() and job.file_name == "" and job.state == "done"
    assert client.get(reverse("export-download", args=[job.pk])).status_code == 404


def test_another_users_or_tenants_link_is_refused(scope_a, staff, file_ticket, places, client_for, admin_b):
    file_ticket(places["xuhui"])
    job = export_job_create(user=staff["manager"], tenant=scope_a, fmt="csv", params={})
    export_job_run(job_id=job.pk)
    other_manager = make_member(scope_a, "manager", "ex_manager2")
    for user in (other_manager, admin_b):
        for name in ("export-download", "export-detail", "export-progress"):
            response = client_for(user).get(reverse(name, args=[job.pk]))
            assert response.status_code == 404 and 'data-testid="export-gone"' in response.content.decode()
    assert client_for(staff["manager"]).get(reverse("export-download", args=[job.pk])).status_code == 200


@pytest.mark.parametrize(("fields", "reason"), [
    ({"format": "pdf"}, "CSV"),
    ({"store": "abc"}, "abc"),
    ({"template": "12x"}, "12x"),
    ({"priority": "whenever"}, "whenever"),
    ({"resolved": "1999"}, "1999"),
    ({"q": "x" * 61}, "60"),
    ({"status": "closed"}, None),  # nothing matches: nothing to export
])
def test_bad_input_is_refused_and_no_job_is_written(scope_a, staff, file_ticket, places, start, fields, reason):
    file_ticket(places["xuhui"])
    _client, response = start(staff["manager"], **fields)
    assert response.status_code == 400 and 'data-testid="export-refused"' in response.content.decode()
    assert reason is None or reason in response.content.decode()
    assert not ExportJob.objects.exists()


def test_another_tenants_ids_and_too_many_running_are_refused(scope_a, staff, file_ticket, places, start,
                                                              tenant_b, monkeypatch):
    file_ticket(places["xuhui"])
    with tenant_scope(tenant_b):
        b_store = StoreFactory(region__tenant=tenant_b)
    _client, response = start(staff["manager"], store=str(b_store.pk))
    assert response.status_code == 400 and not ExportJob.objects.exists()
    for _n in range(3):
        ExportJob.objects.create(tenant=scope_a, requested_by=staff["manager"], format="csv")
    _client, response = start(staff["manager"])
    assert response.status_code == 400 and ExportJob.objects.count() == 3
    monkeypatch.setattr("dashboards.export_services.JOB_MAX_ROWS", 0)
    _client, response = start(staff["engineer"])
    assert response.status_code == 400 and ExportJob.objects.count() == 3


def test_the_batch_loop_costs_a_fixed_number_of_queries_per_batch(scope_a, staff, file_ticket, places):
    for _n in range(7):
        file_ticket(places["xuhui"])
    counts = []
    for batch_size in (7, 1):  # one batch, then seven
        job = ExportJob.objects.create(tenant=scope_a, requested_by=staff["manager"], format="csv")
        with CaptureQueriesContext(connection) as queries:
            export_job_run(job_id=job.pk, batch_size=batch_size)
        assert ExportJob.objects.get(pk=job.pk).rows_done == 7
        counts.append(len(queries))
    assert counts[0] <= 12  # claim, load, membership, top id, count, total, batches, done
    assert counts[1] - counts[0] == 6 * 2  # each further batch: its SELECT and the progress UPDATE


def test_a_failing_job_says_so_and_leaves_no_file(scope_a, staff, file_ticket, places, tmp_path):
    file_ticket(places["xuhui"])
    job = ExportJob.objects.create(tenant=scope_a, requested_by=staff["manager"], format="csv")
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / str(scope_a.pk)).write_text("a file where the tenant's folder goes")  # disk trouble
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "failed" and job.error and job.file_name == ""
    assert not any((tmp_path / "exports").rglob("*.csv"))


def test_a_job_whose_worker_died_is_failed_by_the_cleanup(scope_a, staff):
    job = ExportJob.objects.create(tenant=scope_a, requested_by=staff["manager"], format="csv", state="running")
    exports_clean(now=timezone.now() + datetime.timedelta(hours=4))
    job.refresh_from_db()
    assert job.state == "failed" and job.error
