"""E-mail intake: read a tenant's mailbox (IMAP, or a Maildir folder on this machine) and turn
each unread mail into a ticket, or a comment on the ticket whose number its subject carries (or
on the sender's open ticket) — once per Message-ID, however often it is read.

Settings: `Tenant.settings["mailbox"] = {"kind": "imap"|"maildir", "host", "port", "ssl",
"username", "password", "folder", "path"}` (host … folder for IMAP, path for Maildir). A mail
is marked seen only after it was taken in, so a crash leaves it for the next run (and does not
stop the mail behind it); one the service refuses (ValidationError) is marked seen and logged,
so it cannot come back every run.
With `settings.MAILDIR_ROOT` set, Maildir paths must lie inside it."""

import contextlib
import email
import email.policy
import hashlib
import html
import imaplib
import logging
import mailbox
import mimetypes
import os
import re
import ssl
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path, PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.validators import validate_email
from django.utils.html import strip_tags
from django.utils.translation import gettext as _

from . import fields as schema
from .models import Source
from .services import inbound_message_receive, inbound_template

logger = logging.getLogger(__name__)

TICKET_NUMBER_RE = re.compile(r"(?<![A-Z])[A-Z]{1,8}-\d{8}-\d{4,}(?!\d)")
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 10
MAX_BODY_CHARS = 10000
MAX_SUBJECT_CHARS = 200
MAX_MESSAGES_PER_RUN = 200
IMAP_TIMEOUT = 30
_AUTO_PRECEDENCE = {"bulk", "junk", "auto_reply", "list"}
# Where a reply's quote of the earlier mail begins (Gmail, Outlook, Foxmail/QQ/163 in zh and en).
_QUOTE_START = re.compile(
    r"^(?:On .{1,200} wrote:|在 .{1,200}写道[:：]|-{2,}\s*(?:Original Message|原始邮件|回复的原邮件)\s*-{2,}"
    r"|(?:From|发件人)[:：]\s.+)\s*$",
    re.IGNORECASE,
)


class MailboxError(Exception):
    """The mailbox is not configured, not reachable or refused us."""


@dataclass
class ParsedMail:
    message_id: str
    sender_email: str
    sender_name: str
    subject: str
    body: str
    ticket_number: str
    auto_submitted: bool
    attachments: list = field(default_factory=list)
    headers: dict = field(default_factory=dict)


# --- parsing ----------------------------------------------------------------------------

def _header(message, name):
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError):  # a header the parser cannot make sense of
        value = None
    # NUL: no database stores it in text, and it means nothing in a mail.
    return " ".join(str(value).replace("\x00", "").split()) if value is not None else ""


def _html_to_text(markup):
    markup = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>", "", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h[1-6])\s*>", "\n", markup)
    return html.unescape(strip_tags(markup))


def _part_text(part):
    try:
        text = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, broken encoding
        payload = part.get_payload(decode=True) or b""
        text = payload.decode("utf-8", "replace")
    return text if isinstance(text, str) else ""


def _reply_strip(text):
    """The new part of a reply: everything before the quoted earlier mail, when there is one."""
    kept = []
    for line in text.splitlines():
        if _QUOTE_START.match(line.strip()):
            break
        kept.append(line)
    while kept and (not kept[-1].strip() or kept[-1].lstrip().startswith(">")):
        kept.pop()
    stripped = "\n".join(kept).strip()
    return stripped or text.strip()


def _body_text(message):
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except (KeyError, ValueError, TypeError):
        part = None
    if part is None:
        return ""
    text = _part_text(part).replace("\x00", "")
    if part.get_content_type() == "text/html":
        text = _html_to_text(text)
    text = re.sub(r"\n{3,}", "\n\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _reply_strip(text)[:MAX_BODY_CHARS]


def _attachments(message):
    """Attachments we keep, as uploads: what a comment accepts (fields.upload_check: allowed
    types, real images, not empty), at most 10 MB each; the rest are skipped and logged."""
    files = []
    try:
        parts = list(message.iter_attachments())
    except (KeyError, ValueError, TypeError, AttributeError):
        parts = []
    for index, part in enumerate(parts, start=1):
        content_type = part.get_content_type()
        try:
            name = part.get_filename() or ""
        except (ValueError, TypeError, IndexError):
            name = ""
        name = PurePath(str(name).replace("\\", "/").replace("\x00", "")).name.strip()
        if not name:
            name = f"attachment-{index}{mimetypes.guess_extension(content_type) or ''}"
        if len(name) > 200:
            stem, dot, extension = name.rpartition(".")
            name = (stem[:190] + dot + extension[:9]) if dot else name[:200]
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        if len(payload) > MAX_ATTACHMENT_BYTES:
            logger.info("mail attachment %r skipped: %d bytes", name, len(payload))
            continue
        upload = SimpleUploadedFile(name, payload, content_type=content_type)
        try:
            schema.upload_check(upload, kind="file", max_size_mb=MAX_ATTACHMENT_BYTES // (1024 * 1024))
        except ValidationError as exc:
            logger.info("mail attachment %r skipped: %s", name, exc.messages)
            continue
        upload.seek(0)
        files.append(upload)
        if len(files) >= MAX_ATTACHMENTS:
            break
    return files


def mail_parse(raw: bytes) -> ParsedMail:
    """What the intake needs from one RFC 5322 message."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    name, address = parseaddr(_header(message, "From"))
    address = address.strip()
    try:
        validate_email(address)
    except ValidationError:
        address = ""
    subject = _header(message, "Subject")[:MAX_SUBJECT_CHARS]
    message_id = _header(message, "Message-ID").strip()
    if not message_id or len(message_id) > 255:
        message_id = "sha256:" + hashlib.sha256(message_id.encode() if message_id else raw).hexdigest()
    number = TICKET_NUMBER_RE.search(subject)
    auto_submitted = _header(message, "Auto-Submitted").lower() not in ("", "no") or (
        _header(message, "Precedence").lower() in _AUTO_PRECEDENCE
    ) or bool(_header(message, "X-Autoreply") or _header(message, "X-Autorespond"))
    return ParsedMail(
        message_id=message_id, sender_email=address.lower(), sender_name=name.strip()[:60], subject=subject,
        body=_body_text(message), ticket_number=number.group(0) if number else "",
        auto_submitted=auto_submitted, attachments=_attachments(message),
        headers={key: _header(message, key)[:500] for key in ("Message-ID", "From", "To", "Subject", "Date")},
    )


# --- taking one mail in -----------------------------------------------------------------

def _own_addresses(tenant, config):
    own = {parseaddr(settings.DEFAULT_FROM_EMAIL)[1].lower()}
    if "@" in str(config.get("username", "")):
        own.add(str(config["username"]).lower())
    sender = (tenant.settings.get("email") or {}).get("from_email") if isinstance(tenant.settings, dict) else None
    if sender:
        own.add(parseaddr(sender)[1].lower())
    own.discard("")
    return own


def _take_safely(*, tenant, raw, own_addresses, label):
    """mail_take for the fetch loops: a mail that breaks the intake in an unexpected way is
    logged and left unread (the service is atomic, so nothing of it was written) rather than
    stopping every mail behind it. Returns the outcome, or None for such a failure."""
    try:
        return mail_take(tenant=tenant, raw=raw, own_addresses=own_addresses)
    except Exception:
        logger.exception("mail %s for tenant %s failed; left unread for the next run", label, tenant.slug)
        return None


def mail_take(*, tenant, raw, own_addresses=()):
    """Take one mail in (tenant scope open). Returns "created", "commented", "duplicate",
    "skipped" (auto-replies, mail from ourselves or without a sender) or "refused"."""
    mail = mail_parse(raw)
    if not mail.sender_email or mail.sender_email in own_addresses or mail.auto_submitted:
        logger.info("mail %s from %r skipped (no sender, our own or automatic)", mail.message_id, mail.sender_email)
        return "skipped"
    body = mail.body or mail.subject or ("" if mail.attachments else _("(empty message)"))
    try:
        _ticket, created, replayed = inbound_message_receive(
            tenant=tenant, channel=Source.EMAIL, external_id=mail.message_id,
            sender={"email": mail.sender_email, "name": mail.sender_name}, subject=mail.subject, body=body,
            raw={"headers": mail.headers, "attachments": [f.name for f in mail.attachments]},
            files=mail.attachments, ticket_number=mail.ticket_number,
        )
    except ValidationError as exc:
        logger.error("mail %s for tenant %s refused: %s", mail.message_id, tenant.slug, exc.messages)
        return "refused"
    if replayed:
        return "duplicate"
    return "created" if created else "commented"


# --- mailboxes --------------------------------------------------------------------------

def _imap_quote(folder):
    if re.fullmatch(r"[A-Za-z0-9_./-]+", folder):
        return folder
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_check(result, what):
    typ, data = result
    if typ != "OK":
        raise MailboxError(f"IMAP {what} failed: {data!r}")
    return data


def _imap_fetch(tenant, config, own):
    host = config.get("host")
    if not host or not config.get("username"):
        raise MailboxError("IMAP mailbox needs host and username")
    use_ssl = bool(config.get("ssl", True))
    try:
        port = int(config.get("port") or (993 if use_ssl else 143))
    except (TypeError, ValueError):
        raise MailboxError(f"IMAP port {config.get('port')!r} is not a number") from None
    try:
        if use_ssl:
            conn = imaplib.IMAP4_SSL(host, port, ssl_context=ssl.create_default_context(), timeout=IMAP_TIMEOUT)
        else:
            conn = imaplib.IMAP4(host, port, timeout=IMAP_TIMEOUT)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"cannot reach {host}:{port}: {exc}") from exc
    taken = 0
    try:
        _imap_check(conn.login(config["username"], config.get("password", "")), "LOGIN")
        _imap_check(conn.select(_imap_quote(config.get("folder") or "INBOX")), "SELECT")
        data = _imap_check(conn.uid("SEARCH", "UNSEEN"), "SEARCH")
        uids = (data[0] or b"").split()[:MAX_MESSAGES_PER_RUN]
        for uid in uids:
            # BODY.PEEK leaves \Seen alone: the flag is set only once the mail was taken in.
            fetched = _imap_check(conn.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH")
            raw = next((item[1] for item in fetched if isinstance(item, tuple) and len(item) == 2), None)
            if not raw:
                continue
            outcome = _take_safely(tenant=tenant, raw=raw, own_addresses=own, label=f"uid {uid!r}")
            if outcome is None:
                continue
            _imap_check(conn.uid("STORE", uid, "+FLAGS", "(\\Seen)"), "STORE")
            taken += outcome in ("created", "commented")
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"IMAP error on {host}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()
    return taken


def _maildir_path(config):
    path = config.get("path")
    if not path:
        raise MailboxError("Maildir mailbox needs a path")
    resolved = Path(path).resolve()
    root = getattr(settings, "MAILDIR_ROOT", None)
    if root and not resolved.is_relative_to(Path(root).resolve()):
        raise MailboxError(f"Maildir {path} is outside MAILDIR_ROOT")
    return resolved


def _maildir_unseen(path, colon):
    """(mtime, key) of unseen mail, oldest first, from the file names alone (Maildir keeps the
    flags there: everything in new/, and cur/ files without S in `key:2,FLAGS`), so a run does
    not parse the mail it has read before."""
    found = []
    for subdir in ("new", "cur"):
        with os.scandir(path / subdir) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                key, _sep, info = entry.name.partition(colon)
                if subdir == "cur" and "S" in info.partition(",")[2]:
                    continue
                found.append((entry.stat().st_mtime, key))
    return sorted(found)


def _maildir_fetch(tenant, config, own):
    path = _maildir_path(config)
    try:
        box = mailbox.Maildir(path, factory=None, create=False)
        pending = _maildir_unseen(path, box.colon)
    except (mailbox.NoSuchMailboxError, OSError) as exc:
        raise MailboxError(f"no Maildir at {config.get('path')}") from exc
    taken = 0
    for _mtime, key in pending[:MAX_MESSAGES_PER_RUN]:
        outcome = _take_safely(tenant=tenant, raw=box.get_bytes(key), own_addresses=own, label=key)
        if outcome is None:
            continue
        message = box.get_message(key)
        message.set_subdir("cur")
        message.add_flag("S")
        box[key] = message
        taken += outcome in ("created", "commented")
    return taken


def mailbox_fetch(*, tenant) -> int:
    """Read the tenant's unread mail (tenant scope open). Returns how many mails became a
    ticket or a comment; raises MailboxError when the mailbox cannot be read."""
    config = tenant.settings.get("mailbox") if isinstance(tenant.settings, dict) else None
    if not isinstance(config, dict) or config.get("kind") not in ("imap", "maildir"):
        raise MailboxError(f"tenant {tenant.slug} has no mailbox configured")
    if inbound_template(tenant=tenant) is None:
        # Leave the mail unread: it can become tickets once a template is published.
        raise MailboxError(f"tenant {tenant.slug} has no published template to take mail in")
    own = _own_addresses(tenant, config)
    if config["kind"] == "imap":
        return _imap_fetch(tenant, config, own)
    return _maildir_fetch(tenant, config, own)
