"""`emails`: send one message over SMTP, or, with no JOBQUEUE_SMTP_HOST, write it as an
RFC 5322 `.eml` file into the outbox folder (a dry run).

Recipients (to, cc and bcc together) are capped per job (JOBQUEUE_EMAILS_MAX_RECIPIENTS), and
may be held to a list of domains (JOBQUEUE_EMAILS_ALLOWED_DOMAINS): the API refuses such a job
with a 422, and the handler refuses it again. JOBQUEUE_DISABLED_HANDLERS=emails turns the
handler off. See docs/security.md."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, getaddresses
from typing import TYPE_CHECKING, Any

from worker.handlers.base import JobContext, PermanentError, registry
from worker.handlers.config import handler_settings
from worker.handlers.payload import (
    InvalidPayload,
    optional_str,
    payload_limits,
    payload_model,
    require_str,
    str_list,
)
from worker.handlers.storage import write_file
from worker.settings import HandlerLimits, SmtpSettings

if TYPE_CHECKING:
    # email's header classes and aiosmtplib load when a message is checked or sent, not on
    # every worker's cold start (issue 27: about 10 ms of CPU)
    from email.headerregistry import Address
    from email.message import EmailMessage

SMTP_TIMEOUT_SECONDS = 30.0

_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
# local@domain with no name, quotes, comments or separators: what getaddresses would return
# as is, so it need not run
_BARE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+$")
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def parse_address(field: str, text: str, *, dotted_domain: bool = True) -> Address:
    """One address, bare (`a@example.com`) or with a name (`Ann <a@example.com>`).

    Recipients need a dotted domain, which catches typos such as `ann@gmail`; the sender
    from settings may use a single label such as `localhost`.
    """
    parsed = _parse_address(text, dotted_domain)
    if isinstance(parsed, str):
        raise InvalidPayload(field, parsed)
    return parsed


# The API checks every emails job it accepts, and recipients repeat: remember the answers.
@functools.lru_cache(maxsize=4096)
def _parse_address(text: str, dotted_domain: bool) -> Address | str:
    """The address, or what is wrong with it."""
    if "\r" in text or "\n" in text:
        return "must not contain line breaks"
    if _BARE.match(text):  # the common case: skip the parser
        display_name, addr_spec = "", text
    else:
        found = getaddresses([text])
        if len(found) != 1:
            several = len(found) > 1 and "," in text
            problem = "holds several addresses; give a list instead" if several else "is not valid"
            return f"{text!r} {problem} (one email address per item)"
        display_name, addr_spec = found[0]
    local, at, domain = addr_spec.rpartition("@")
    if not at or not _LOCAL_PART.match(local) or len(local) > 64:
        return f"{text!r} is not a valid email address"
    try:
        # ASCII labels pass through IDNA unchanged; the label check below covers them
        ascii_domain = domain if domain.isascii() and domain else domain.encode("idna").decode()
    except UnicodeError:
        return f"{text!r} has an invalid domain"
    labels = ascii_domain.split(".")
    if len(labels) < (2 if dotted_domain else 1) or not all(
        _DOMAIN_LABEL.match(label) for label in labels
    ):
        return f"{text!r} is not a valid email address (bad domain)"
    from email.headerregistry import Address

    return Address(display_name=display_name, username=local, domain=ascii_domain.lower())


def _addresses(payload: Mapping[str, Any], field: str, *, required: bool) -> list[Address]:
    if not required and payload.get(field) is None:  # cc, bcc, reply_to: mostly absent
        return []
    items = str_list(payload, field, required=required)
    name = field if isinstance(payload.get(field), str) else None
    return [parse_address(name or f"{field}[{i}]", item) for i, item in enumerate(items)]


def _sender(settings: SmtpSettings) -> Address:
    try:
        return parse_address("smtp_from", settings.smtp_from, dotted_domain=False)
    except InvalidPayload as exc:
        # The operator's setting is wrong, not the payload: fail this attempt, keep retrying.
        problem = exc.problem
        raise ValueError(f"setting JOBQUEUE_SMTP_FROM is not a valid address: {problem}") from None


@dataclass(frozen=True)
class EmailFields:
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]
    subject: str
    body: str
    html: str | None


def read_email(payload: Mapping[str, Any]) -> EmailFields:
    subject = require_str(payload, "subject")
    if "\r" in subject or "\n" in subject:
        raise InvalidPayload("subject", "must not contain line breaks")
    return EmailFields(
        to=_addresses(payload, "to", required=True),
        cc=_addresses(payload, "cc", required=False),
        bcc=_addresses(payload, "bcc", required=False),
        reply_to=_addresses(payload, "reply_to", required=False),
        subject=subject,
        # optional, as in the seed's example ({"to", "subject"}): an empty plain-text body
        body="" if payload.get("body") is None else require_str(payload, "body", allow_empty=True),
        html=optional_str(payload, "html"),
    )


def _recipients_ok(value: Any, *, required: bool) -> bool:
    """True when read_email would take this recipient field as it is: one address or a list
    of them (empty only when not required), each valid. False means "ask read_email"."""
    if isinstance(value, str):
        return not isinstance(_parse_address(value, True), str)  # an Address, not a problem
    if isinstance(value, list) and (value or not required):
        return all(
            isinstance(item, str) and not isinstance(_parse_address(item, True), str)
            for item in value
        )
    return False


@payload_model("emails")  # the API refuses a bad payload with a 422 before it is a job
def check_email(payload: Mapping[str, Any]) -> None:
    """read_email's verdict without building the fields, for the API, which checks every
    emails job it accepts (a batch holds up to a thousand) and drops the fields. A payload
    accepted here is one read_email accepts; any other is handed to read_email, which names
    the field that is wrong, so that the two cannot disagree on an error."""
    get = payload.get
    subject, body, html = get("subject"), get("body"), get("html")
    cc, bcc, reply_to = get("cc"), get("bcc"), get("reply_to")
    if (
        isinstance(subject, str)
        and subject.strip()
        and "\r" not in subject
        and "\n" not in subject
        and (body is None or isinstance(body, str))
        and (html is None or (isinstance(html, str) and html.strip()))
        and _recipients_ok(get("to"), required=True)
        and (cc is None or _recipients_ok(cc, required=False))
        and (bcc is None or _recipients_ok(bcc, required=False))
        and (reply_to is None or _recipients_ok(reply_to, required=False))
    ):
        return
    read_email(payload)


RECIPIENT_FIELDS = ("to", "cc", "bcc")


def domain_allowed(domain: str, allowed: list[str]) -> bool:
    """The domain, or a subdomain of it, is listed (an empty list allows any)."""
    domain = domain.lower()
    return not allowed or any(domain == a or domain.endswith(f".{a}") for a in allowed)


def check_recipients(fields: EmailFields, limits: HandlerLimits) -> None:
    """The operator's limits on where a job may send mail, naming the field at fault."""
    total = len(fields.to) + len(fields.cc) + len(fields.bcc)
    if total > limits.emails_max_recipients:
        raise InvalidPayload(
            "to",
            f"{total} recipients (to, cc and bcc); at most {limits.emails_max_recipients} per "
            "job (JOBQUEUE_EMAILS_MAX_RECIPIENTS)",
        )
    allowed = limits.emails_allowed_domains
    for name in RECIPIENT_FIELDS:
        for index, address in enumerate(getattr(fields, name)):
            if not domain_allowed(address.domain, allowed):
                raise InvalidPayload(
                    f"{name}[{index}]",
                    f"{address.addr_spec}: the domain {address.domain} is not in "
                    "JOBQUEUE_EMAILS_ALLOWED_DOMAINS",
                )


@payload_limits("emails")
def check_email_limits(payload: Mapping[str, Any], limits: HandlerLimits) -> None:
    """The API's check of the limits: the payload is valid by now (check_email ran first)."""
    if limits.emails_allowed_domains or _may_exceed(payload, limits.emails_max_recipients):
        check_recipients(read_email(payload), limits)


def _may_exceed(payload: Mapping[str, Any], cap: int) -> bool:
    count = 0
    for name in RECIPIENT_FIELDS:
        value = payload.get(name)
        count += 1 if isinstance(value, str) else len(value) if isinstance(value, list) else 0
    return count > cap


def build_message(
    payload: dict[str, Any], ctx: JobContext, digest: str
) -> tuple[EmailMessage, list[str]]:
    """The message with its headers (Bcc included), and the envelope recipients."""
    fields = read_email(payload)
    check_recipients(fields, handler_settings().limits)  # again: a job may predate the settings
    to, cc, bcc, reply_to = fields.to, fields.cc, fields.bcc, fields.reply_to
    subject, body, html = fields.subject, fields.body, fields.html
    sender = _sender(handler_settings().smtp)
    from email import policy
    from email.message import EmailMessage

    message = EmailMessage(policy=policy.SMTP)
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    if bcc:
        message["Bcc"] = bcc
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    # The same job sends the same Message-ID on every try, so receivers can drop a repeat.
    message["Message-ID"] = f"<jobqueue.{ctx.job_id}.{digest}@{sender.domain}>"
    message["X-Jobqueue-Job-Id"] = str(ctx.job_id)
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    recipients = list(dict.fromkeys(a.addr_spec for a in [*to, *cc, *bcc]))
    return message, recipients


def job_digest(payload: dict[str, Any], ctx: JobContext) -> str:
    """Stable across tries of one job, different for another job or payload."""
    canonical = json.dumps([ctx.queue_name, ctx.job_id, payload], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


async def _deliver(
    message: EmailMessage, recipients: list[str], settings: SmtpSettings
) -> dict[str, str]:
    """Send over SMTP; returns the recipients the server refused while accepting others."""
    import aiosmtplib

    del message["Bcc"]  # blind copies travel in the envelope only
    try:
        refused, _ = await aiosmtplib.send(
            message,
            sender=_sender(settings).addr_spec,
            recipients=recipients,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            cert_bundle=settings.smtp_ca_file,
            timeout=SMTP_TIMEOUT_SECONDS,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        if all(refusal.code >= 500 for refusal in exc.recipients):
            details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise PermanentError(f"the SMTP server refused every recipient: {details}") from None
        raise
    except aiosmtplib.SMTPDataError as exc:
        if exc.code >= 500:
            reply = f"{exc.code} {exc.message}"
            raise PermanentError(f"the SMTP server rejected the message: {reply}") from None
        raise
    return {recipient: f"{reply.code} {reply.message}" for recipient, reply in refused.items()}


@registry.register("emails", timeout_seconds=120)
async def send_email(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    digest = job_digest(payload, ctx)
    message, recipients = build_message(payload, ctx, digest)
    result: dict[str, Any] = {"message_id": str(message["Message-ID"]), "recipients": recipients}
    config = handler_settings()
    if not config.smtp.smtp_host:
        name = f"job-{ctx.job_id}-{digest[:12]}.eml"
        path = await asyncio.to_thread(write_file, config.outbox_dir, name, message.as_bytes())
        return {**result, "dry_run": True, "eml_path": str(path)}
    refused = await _deliver(message, recipients, config.smtp)
    return {**result, "dry_run": False, "refused": refused}
