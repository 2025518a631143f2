"""E-mail intake from a Maildir built in tmp_path and from an IMAP stub server on 127.0.0.1 that a
real imaplib client talks to: new mail makes a ticket, a reply with the number comments it, the
same Message-ID twice makes one, attachments are stored (unsafe or huge ones skipped)."""

import mailbox
import re
import socketserver
import threading
from email.message import EmailMessage
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from scrm.models import Customer
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory
from tickets.mail import MailboxError, mail_parse, mailbox_fetch
from tickets.models import Attachment, EventKind, InboundMessage, Source, Ticket
from tickets.services import (
    category_get_or_create,
    template_create,
    template_draft_set,
    template_publish,
    ticket_intake,
)
from tickets.tasks import mail_fetch_all, mail_fetch_task

pytestmark = pytest.mark.django_db

FIELDS = [{"key": "desc", "type": "textarea", "label": {"zh-hans": "描述"}, "required": False, "public": "edit"}]
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def publish_template(tenant):
    category = category_get_or_create(tenant=tenant, code="service", name="售后")
    template = template_create(tenant=tenant, name="售后服务", slug="service", category=category,
                               number_prefix="SH", is_public=True)
    template_draft_set(template=template, fields=FIELDS)
    template_publish(template=template)


def mail(subject, body, *, message_id, sender="张先生 <zhang@example.com>", html=None, attachments=(), headers=None):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "service@weidao.example"
    message["Subject"] = subject
    message["Date"] = "Mon, 23 Nov 2026 10:00:00 +0800"
    if message_id:
        message["Message-ID"] = message_id
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(body)
    if html is not None:
        message.clear_content()
        message.set_content(html, subtype="html")
    for name, content, maintype, subtype in attachments:
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


@pytest.fixture
def maildir(tmp_path, tenant_a):
    path = tmp_path / "Maildir"
    box = mailbox.Maildir(path, create=True)
    tenant_a.settings = {"mailbox": {"kind": "maildir", "path": str(path)}}
    tenant_a.save()
    with tenant_scope(tenant_a):
        publish_template(tenant_a)
    return box


def fetch(tenant):
    with tenant_scope(tenant):
        return mailbox_fetch(tenant=tenant)


def flags(box):
    return sorted((box.get_message(key).get_subdir(), box.get_message(key).get_flags()) for key in box.iterkeys())


# --- Maildir ----------------------------------------------------------------------------

def test_new_mail_becomes_a_ticket_linked_by_email(maildir, tenant_a):
    with tenant_scope(tenant_a):
        customer = CustomerFactory(tenant=tenant_a, name="张建国", email="Zhang@Example.com")
    body = "您好，上周装的洗碗机漏水了。\n地址：徐汇区漕溪北路88号"
    maildir.add(mail("洗碗机漏水", body, message_id="<m1@example.com>"))
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.get()
        assert ticket.source == Source.EMAIL
        assert ticket.title == "洗碗机漏水"
        assert ticket.description == body
        assert ticket.customer_id == customer.pk
        assert ticket.number.startswith("SH-")
        inbound = InboundMessage.objects.get()
        assert (inbound.channel, inbound.external_id, inbound.sender) == ("email", "<m1@example.com>",
                                                                         "zhang@example.com")
        assert inbound.payload["headers"]["Subject"] == "洗碗机漏水"
    assert flags(maildir) == [("cur", "S")]
    assert fetch(tenant_a) == 0  # read mail is not read again


def test_unknown_sender_becomes_a_new_customer(maildir, tenant_a):
    maildir.add(mail("咨询", "请问保修多久？", message_id="<m2@example.com>", sender="李女士 <li@example.com>"))
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        customer = Ticket.objects.get().customer
        assert (customer.name, customer.email, customer.phone) == ("李女士", "li@example.com", "")


def test_reply_with_the_number_comments_that_ticket(maildir, tenant_a):
    maildir.add(mail("第一件事", "烤箱不加热", message_id="<a@example.com>"))
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        first = Ticket.objects.get()
        # A newer open ticket of the same customer would otherwise take the comment.
        newer = ticket_intake(tenant=tenant_a, source=Source.PHONE, template=first.template,
                              customer=first.customer, title="另一件事")
    reply = "好的，周六上午可以。\n\nOn Mon, 23 Nov 2026 at 10:00, 服务台 <service@weidao.example> wrote:\n> 请约时间"
    maildir.add(mail(f"Re: [{first.number}] 第一件事", reply, message_id="<c@example.com>"))
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        assert Ticket.objects.count() == 2
        comments = list(first.events.filter(kind=EventKind.COMMENT).values_list("message", "is_public"))
        assert comments == [("好的，周六上午可以。", True)]
        assert InboundMessage.objects.get(external_id="<c@example.com>").ticket_id == first.pk
        assert not newer.events.filter(kind=EventKind.COMMENT).exists()


def test_number_of_someone_elses_ticket_does_not_comment_it(maildir, tenant_a):
    maildir.add(mail("我的工单", "内容", message_id="<own@example.com>"))
    fetch(tenant_a)
    with tenant_scope(tenant_a):
        theirs = Ticket.objects.get()
    maildir.add(mail(f"Re: {theirs.number}", "我来捣乱", message_id="<x@example.com>", sender="x@evil.example"))
    fetch(tenant_a)
    with tenant_scope(tenant_a):
        assert not theirs.events.filter(kind=EventKind.COMMENT).exists()
        assert Ticket.objects.count() == 2


def test_same_message_id_twice_is_one_ticket(maildir, tenant_a):
    raw = mail("重复投递", "同一封邮件", message_id="<dup@example.com>")
    maildir.add(raw)
    maildir.add(raw)
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        assert Ticket.objects.count() == 1
        assert InboundMessage.objects.count() == 1
        assert not Ticket.objects.get().events.filter(kind=EventKind.COMMENT).exists()
    assert flags(maildir) == [("cur", "S"), ("cur", "S")]


def test_mail_without_message_id_is_deduplicated_by_content(maildir, tenant_a):
    raw = mail("没有编号", "正文", message_id=None)
    maildir.add(raw)
    maildir.add(raw)
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        assert InboundMessage.objects.get().external_id.startswith("sha256:")


def test_attachments_are_stored_and_unsafe_ones_skipped(maildir, tenant_a):
    attachments = [
        ("报价单.pdf", PDF, "application", "pdf"),
        ("setup.exe", b"MZ\x90\x00", "application", "octet-stream"),
        ("fake.jpg", b"not really a jpeg", "image", "jpeg"),
        ("huge.pdf", b"%PDF" + b"0" * (10 * 1024 * 1024), "application", "pdf"),
    ]
    maildir.add(mail("发票", "见附件", message_id="<att@example.com>", attachments=attachments))
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.get()
        stored = Attachment.objects.get()
        assert (stored.ticket_id, stored.name, stored.size, stored.is_public) == (ticket.pk, "报价单.pdf", len(PDF),
                                                                                  True)
        with stored.file.open("rb") as handle:
            assert handle.read() == PDF
        assert ticket.description == "见附件"


def test_html_only_mail_is_stripped_to_text(maildir, tenant_a):
    html = "<html><head><style>p{color:red}</style></head><body><p>热水器&nbsp;不出热水</p><p>急！</p></body></html>"
    maildir.add(mail("热水器", "", message_id="<h@example.com>", html=html))
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        assert Ticket.objects.get().description == "热水器\xa0不出热水\n急！"


def test_auto_replies_and_our_own_mail_are_skipped(maildir, tenant_a, settings):
    maildir.add(mail("自动回复：休假中", "我在休假", message_id="<auto@example.com>",
                     headers={"Auto-Submitted": "auto-replied"}))
    maildir.add(mail("通知", "您的工单已受理", message_id="<own@example.com>", sender=settings.DEFAULT_FROM_EMAIL))
    assert fetch(tenant_a) == 0
    with tenant_scope(tenant_a):
        assert (Ticket.objects.count(), InboundMessage.objects.count()) == (0, 0)
    assert flags(maildir) == [("cur", "S"), ("cur", "S")]


def test_a_mail_that_breaks_is_left_unread_and_does_not_block_the_rest(maildir, tenant_a, monkeypatch):
    import tickets.mail

    real = tickets.mail.inbound_message_receive

    def flaky(**kwargs):
        if kwargs["subject"] == "坏邮件":
            raise RuntimeError("storage is down")
        return real(**kwargs)

    monkeypatch.setattr(tickets.mail, "inbound_message_receive", flaky)
    bad = maildir.add(mail("坏邮件", "一", message_id="<bad@example.com>"))
    maildir.add(mail("好邮件", "二", message_id="<good@example.com>", sender="wu@example.com"))
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        assert list(Ticket.objects.values_list("title", flat=True)) == ["好邮件"]
        assert InboundMessage.objects.count() == 1
    assert maildir.get_message(bad).get_flags() == ""
    monkeypatch.setattr(tickets.mail, "inbound_message_receive", real)
    assert fetch(tenant_a) == 1  # the next run takes it in
    assert flags(maildir) == [("cur", "S"), ("cur", "S")]


def test_ticket_number_pattern():
    raw = mail("回复：关于 WX-20261123-0012 的进度", "x", message_id="<n@example.com>")
    assert mail_parse(raw).ticket_number == "WX-20261123-0012"
    assert mail_parse(mail("订单 12345678", "x", message_id="<n2@example.com>")).ticket_number == ""


def test_no_mailbox_or_no_template(tenant_a, tmp_path):
    with pytest.raises(MailboxError, match="no mailbox"):
        fetch(tenant_a)
    tenant_a.settings = {"mailbox": {"kind": "maildir", "path": str(tmp_path / "missing")}}
    tenant_a.save()
    with pytest.raises(MailboxError, match="template"):
        fetch(tenant_a)
    with tenant_scope(tenant_a):
        publish_template(tenant_a)
    with pytest.raises(MailboxError, match="no Maildir"):
        fetch(tenant_a)


def test_maildir_root_confines_paths(maildir, tenant_a, tmp_path, settings):
    settings.MAILDIR_ROOT = str(tmp_path / "elsewhere")
    maildir.add(mail("x", "y", message_id="<r@example.com>"))
    with pytest.raises(MailboxError, match="outside MAILDIR_ROOT"):
        fetch(tenant_a)
    assert flags(maildir) == [("new", "")]


def test_command_and_tasks(maildir, tenant_a, tenant_b, django_capture_on_commit_callbacks):
    maildir.add(mail("命令行", "一", message_id="<cmd@example.com>"))
    out = StringIO()
    call_command("mail_fetch", "--tenant", "weidao", stdout=out)
    assert out.getvalue().strip() == "weidao: 1 mail(s) taken in"
    with pytest.raises(CommandError, match="no mailbox"):
        call_command("mail_fetch", "--tenant", "meijia")

    maildir.add(mail("任务", "二", message_id="<task@example.com>"))
    assert mail_fetch_task.apply(kwargs={"tenant_id": tenant_a.pk}).get() == 1

    maildir.add(mail("定时", "三", message_id="<beat@example.com>"))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert mail_fetch_all.apply().get() == 1  # tenant_b has no mailbox
    assert len(callbacks) == 1
    with tenant_scope(tenant_a):
        # One sender: the first mail made the ticket, the next two commented on it while open.
        ticket = Ticket.objects.get()
        assert ticket.title == "命令行"
        assert list(ticket.events.filter(kind=EventKind.COMMENT).values_list("message", flat=True)) == ["二", "三"]
    with tenant_scope(tenant_b):
        assert Ticket.objects.count() == 0


# --- IMAP -------------------------------------------------------------------------------

class ImapStub(socketserver.ThreadingTCPServer):
    """Just enough IMAP4rev1 for imaplib: CAPABILITY, LOGIN, SELECT, UID SEARCH UNSEEN,
    UID FETCH (BODY.PEEK[]), UID STORE +FLAGS (\\Seen), LOGOUT. Messages are {uid: bytes}."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, messages):
        super().__init__(("127.0.0.1", 0), ImapHandler)
        self.messages = dict(messages)
        self.seen = set()
        self.commands = []
        self.logins = []


class ImapHandler(socketserver.StreamRequestHandler):
    def send(self, line):
        self.wfile.write(line if isinstance(line, bytes) else line.encode())

    def handle(self):
        server = self.server
        self.send("* OK IMAP4rev1 stub ready\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            tag, _space, rest = line.decode().rstrip("\r\n").partition(" ")
            command = rest.upper()
            server.commands.append(re.sub(r"^LOGIN .*", "LOGIN ***", command))
            if command == "CAPABILITY":
                self.send(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK CAPABILITY completed\r\n")
            elif command.startswith("LOGIN "):
                server.logins.append(rest.split(" ", 2)[1:])
                self.send(f"{tag} OK LOGIN completed\r\n")
            elif command.startswith("SELECT "):
                self.send(f"* {len(server.messages)} EXISTS\r\n* FLAGS (\\Seen)\r\n{tag} OK [READ-WRITE] done\r\n")
            elif command == "UID SEARCH UNSEEN":
                unseen = " ".join(str(uid) for uid in sorted(server.messages) if uid not in server.seen)
                self.send(f"* SEARCH {unseen}\r\n{tag} OK SEARCH completed\r\n".replace("SEARCH \r\n", "SEARCH\r\n"))
            elif match := re.fullmatch(r"UID FETCH (\d+) \(BODY\.PEEK\[\]\)", command):
                uid = int(match.group(1))
                raw = server.messages[uid]
                self.send(f"* {uid} FETCH (UID {uid} BODY[] {{{len(raw)}}}\r\n".encode() + raw + b")\r\n")
                self.send(f"{tag} OK FETCH completed\r\n")
            elif match := re.fullmatch(r"UID STORE (\d+) \+FLAGS \(\\SEEN\)", command):
                uid = int(match.group(1))
                server.seen.add(uid)
                self.send(f"* {uid} FETCH (UID {uid} FLAGS (\\Seen))\r\n{tag} OK STORE completed\r\n")
            elif command == "LOGOUT":
                self.send(f"* BYE logging out\r\n{tag} OK LOGOUT completed\r\n")
                return
            else:
                self.send(f"{tag} BAD unknown command\r\n")


@pytest.fixture
def imap_stub():
    servers = []

    def start(messages):
        server = ImapStub(messages)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_mail_fetched_over_imap_becomes_a_ticket(imap_stub, tenant_a):
    server = imap_stub({
        101: mail("燃气灶打不着火", "点火没反应", message_id="<imap-1@example.com>",
                  attachments=[("照片说明.txt", b"left burner", "text", "plain")]),
        102: mail("燃气灶打不着火", "点火没反应", message_id="<imap-1@example.com>"),  # redelivered copy
    })
    tenant_a.settings = {"mailbox": {
        "kind": "imap", "host": "127.0.0.1", "port": server.server_address[1], "ssl": False,
        "username": "service@weidao.example", "password": "pw secret", "folder": "INBOX",
    }}
    tenant_a.save()
    with tenant_scope(tenant_a):
        publish_template(tenant_a)
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.select_related("customer").get()
        assert (ticket.title, ticket.description, ticket.source) == ("燃气灶打不着火", "点火没反应", "email")
        assert ticket.customer.email == "zhang@example.com"
        assert list(Attachment.objects.values_list("name", flat=True)) == ["照片说明.txt"]
        assert Customer.objects.count() == 1
    assert server.seen == {101, 102}
    assert server.logins == [["service@weidao.example", '"pw secret"']]
    assert server.commands == [
        "CAPABILITY", "LOGIN ***", "SELECT INBOX", "UID SEARCH UNSEEN",
        "UID FETCH 101 (BODY.PEEK[])", "UID STORE 101 +FLAGS (\\SEEN)",
        "UID FETCH 102 (BODY.PEEK[])", "UID STORE 102 +FLAGS (\\SEEN)", "LOGOUT",
    ]
    assert fetch(tenant_a) == 0  # everything is seen now


def test_imap_refusal_is_a_mailbox_error(tenant_a):
    tenant_a.settings = {"mailbox": {"kind": "imap", "host": "127.0.0.1", "port": 1, "ssl": False,
                                     "username": "u", "password": "p"}}
    tenant_a.save()
    with tenant_scope(tenant_a):
        publish_template(tenant_a)
    with pytest.raises(MailboxError, match="cannot reach"):
        fetch(tenant_a)


def test_nul_bytes_in_a_mail_are_dropped_not_stored(maildir, tenant_a):
    """NUL has no place in a mail's text; PostgreSQL would refuse the ticket for it (issue 13)."""
    maildir.add(mail("洗碗机\x00漏水", "地址：\x00徐汇区", message_id="<nul@example.com>",
                     sender="张\x00先生 <zhang@example.com>",
                     attachments=[("报\x00价.pdf", b"%PDF-1.4 x", "application", "pdf")]))
    assert fetch(tenant_a) == 1
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.get()
        assert (ticket.title, ticket.description) == ("洗碗机漏水", "地址：徐汇区")
        assert InboundMessage.objects.get().payload["headers"]["Subject"] == "洗碗机漏水"
        assert [a.name for a in ticket.attachments.all()] == ["报价.pdf"]
