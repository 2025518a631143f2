"""SSRF (issue 13): a webhook node cannot point the worker at the server's own network — refused
when the node is saved, when the workflow is published and when the worker sends; an address in
OUTBOUND_ALLOWED_NETWORKS is the on-premise exception; redirects are never followed."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from scrm import netguard
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory
from tests.workflow.conftest import edge, node
from tickets.services import ticket_intake
from workflow.models import Workflow
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

pytestmark = pytest.mark.django_db

PRIVATE = ["http://127.0.0.1:6379/", "http://localhost/", "http://169.254.169.254/latest/meta-data/",
           "http://10.0.0.1/", "http://192.168.1.1/", "http://172.16.0.1/", "http://[::1]/",
           "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://100.64.0.1/", "http://[fe80::1]/",
           "http://metadata.google.internal/", "http://2130706433/", "https://user:pw@93.184.215.14/"]


def graph(url):
    return {"nodes": [node("start", "start"), node("hook", "auto", "通知ERP", action="webhook",
                                                   params={"url": url, "secret": "s3"}),
                      node("end", "end")],
            "transitions": [edge("start", "hook"), edge("hook", "end")]}


@pytest.mark.parametrize("url", PRIVATE)
def test_url_check_refuses_the_servers_own_network(url):
    with pytest.raises(netguard.UnsafeURL):
        netguard.url_check(url)


def test_url_check_passes_a_public_address():
    parts, addresses = netguard.url_check("https://93.184.215.14:8443/hook")
    assert (parts.hostname, addresses) == ("93.184.215.14", ["93.184.215.14"])


def test_allow_list_admits_an_on_premise_network(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert netguard.url_check("http://10.20.3.4/erp")[1] == ["10.20.3.4"]
    with pytest.raises(netguard.UnsafeURL):
        netguard.url_check("http://10.21.0.1/erp")


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/", "http://169.254.169.254/latest/meta-data/"])
def test_publish_refuses_a_private_webhook_and_writes_no_version(scope_a, wf_template, url):
    workflow = workflow_create(template=wf_template, name="流程")
    workflow_draft_set(workflow=workflow, graph=graph(url))
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        workflow_publish(workflow=workflow)
    assert "private, loopback or link-local" in str(exc.value)
    assert Workflow.objects.get(pk=workflow.pk).current_version is None


def test_node_editor_refuses_a_loopback_webhook(tenant_a, people, wf_template, client_for, settings):
    from django.urls import reverse

    settings.LANGUAGE_CODE = "en"
    client = client_for(people["manager"])
    client.cookies["django_language"] = "en"
    client.post(reverse("workflow-create"), {"template": wf_template.pk, "source": "blank"})
    with tenant_scope(tenant_a):
        workflow = Workflow.objects.get(template=wf_template)
        before = workflow.draft
    data = {"index": "", "original_key": "", "key": "hook", "name_zh": "通知", "name_en": "", "kind": "auto",
            "auto_action": "webhook", "params": json.dumps({"url": "http://127.0.0.1:6379/"}), "time_limit": "",
            "handler_rule": "", "handler_role": "", "handler_scope": "tenant", "handler_user": "",
            "backup_rule": "", "status": ""}
    response = client.post(reverse("workflow-node", args=[workflow.pk]), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "private, loopback or link-local" in response.content.decode()
    with tenant_scope(tenant_a):
        assert Workflow.objects.get(pk=workflow.pk).draft == before


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self):
        self.server.seen.append((self.path, dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_webhook(tenant, template, url):
    """Publish a start → webhook → end workflow (the allow-list lets the loopback URL in) and
    open a ticket: the engine runs the node and the eager task sends after commit."""
    workflow = workflow_create(template=template, name="流程")
    workflow_draft_set(workflow=workflow, graph=graph(url))
    workflow_publish(workflow=workflow)
    return ticket_intake(tenant=tenant, source="phone", template=template, data={"order_no": "A1"},
                         customer=CustomerFactory(tenant=tenant))


def test_worker_posts_to_an_allowed_on_premise_address(scope_a, wf_template, receiver, settings,
                                                       django_capture_on_commit_callbacks):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    port = receiver.server_address[1]
    with django_capture_on_commit_callbacks(execute=True):
        ticket = run_webhook(scope_a, wf_template, f"http://127.0.0.1:{port}/hook")
    assert len(receiver.seen) == 1
    path, headers, body = receiver.seen[0]
    assert path == "/hook"
    assert headers["Host"] == f"127.0.0.1:{port}"
    assert json.loads(body)["ticket"] == ticket.number


def test_worker_refuses_when_the_allow_list_no_longer_admits_it(scope_a, wf_template, receiver, settings):
    """A version published while the address was allowed (or before this check existed): the
    worker checks again at send time and sends nothing."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    port = receiver.server_address[1]
    workflow = workflow_create(template=wf_template, name="流程")
    workflow_draft_set(workflow=workflow, graph=graph(f"http://127.0.0.1:{port}/hook"))
    workflow_publish(workflow=workflow)
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    from workflow.tasks import webhook_deliver_task

    ticket = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={"order_no": "A1"},
                           customer=CustomerFactory(tenant=scope_a))
    with pytest.raises(netguard.UnsafeURL):
        webhook_deliver_task(tenant_id=scope_a.pk, ticket_id=ticket.pk, node_key="hook")
    assert receiver.seen == []


def test_worker_does_not_follow_a_redirect(scope_a, wf_template, receiver, settings):
    import requests

    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    port = receiver.server_address[1]
    response = netguard.safe_post(f"http://127.0.0.1:{port}/moved", data=b"{}", headers={}, timeout=5)
    assert response.status_code == 302
    assert [seen[0] for seen in receiver.seen] == ["/moved"]
    workflow = workflow_create(template=wf_template, name="流程")
    workflow_draft_set(workflow=workflow, graph=graph(f"http://127.0.0.1:{port}/moved"))
    workflow_publish(workflow=workflow)
    from workflow.tasks import webhook_deliver_task

    ticket = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={"order_no": "A1"},
                           customer=CustomerFactory(tenant=scope_a))
    receiver.seen.clear()
    with pytest.raises(requests.HTTPError, match="not followed"):
        webhook_deliver_task(tenant_id=scope_a.pk, ticket_id=ticket.pk, node_key="hook")
    assert [seen[0] for seen in receiver.seen] == ["/moved"]


def _certificates(tmp_path, hostname):
    """A throw-away CA and a server certificate for `hostname` signed by it."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(subject, issuer, key, signing_key, *, ca, san=None):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = issue(ca_name, ca_name, ca_key, ca_key, ca=True)
    leaf = issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]), ca_name, leaf_key, ca_key,
                 ca=False, san=hostname)
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return paths


def test_pinned_tls_still_checks_the_certificate_for_the_name(tmp_path):
    """safe_post connects to the checked IP; TLS must still verify the certificate for the host
    name the tenant wrote, and refuse one issued for another name."""
    import ssl

    import requests

    paths = _certificates(tmp_path, "hook.test")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths["cert"], paths["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        for name, accepted in (("hook.test", True), ("evil.test", False)):
            with requests.Session() as session:
                session.trust_env, session.verify = False, str(paths["ca"])
                session.mount(f"https://127.0.0.1:{port}", netguard.PinnedAdapter(name))
                if accepted:
                    response = session.post(f"https://127.0.0.1:{port}/hook", data=b"{}",
                                            headers={"Host": f"{name}:{port}"}, timeout=5)
                    assert response.status_code == 200
                else:
                    with pytest.raises(requests.exceptions.SSLError, match=r"match|mismatch"):
                        session.post(f"https://127.0.0.1:{port}/hook", data=b"{}", timeout=5)
        assert [seen[1]["Host"] for seen in server.seen] == [f"hook.test:{port}"]
    finally:
        server.shutdown()
        server.server_close()
