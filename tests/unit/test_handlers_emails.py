"""The `emails` handler: dry-run .eml files parsed back, and delivery to a real SMTP server
listening on loopback (plain, STARTTLS and implicit TLS)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from email import message_from_bytes, policy
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.fixtures.certs import write_control_plane_pki
from tests.unit.handler_support import job_context, leftover_temp_files
from worker.handlers import JobContext, PermanentError, registry
from worker.handlers.emails import send_email
from worker.handlers.payload import InvalidPayload

GOOD = {
    "to": ["Ann Example <ann@example.com>", "bob@example.org"],
    "cc": "carol@example.net",
    "bcc": ["dave@example.com"],
    "reply_to": "help@example.com",
    "subject": "Your report is ready — résumé",
    "body": "Hello,\nthe report is attached.\n",
    "html": "<p>Hello, the report is <b>ready</b>.</p>",
}


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text(part: MIMEPart) -> str:
    """A text part's content with the wire's CRLF line ends turned back into LF."""
    return str(part.get_content()).replace("\r\n", "\n")


def read_file(path: str) -> bytes:
    return Path(path).read_bytes()


async def test_dry_run_writes_an_rfc5322_file_that_parses_back(tmp_path: Path) -> None:
    ctx = job_context(tmp_path, job_id=7, smtp_from="Reports <reports@example.com>")
    result = await send_email(dict(GOOD), ctx)

    assert result["dry_run"] is True
    assert result["recipients"] == [
        "ann@example.com",
        "bob@example.org",
        "carol@example.net",
        "dave@example.com",
    ]
    path = Path(result["eml_path"])
    assert path.parent == (tmp_path / "outbox").resolve() and path.suffix == ".eml"
    raw = read_file(result["eml_path"])
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends
    message = parse(raw)
    assert message["Subject"] == GOOD["subject"]
    assert message["From"].addresses[0].addr_spec == "reports@example.com"
    assert [a.addr_spec for a in message["To"].addresses] == ["ann@example.com", "bob@example.org"]
    assert message["To"].addresses[0].display_name == "Ann Example"
    assert message["Cc"] == "carol@example.net"
    assert message["Bcc"] == "dave@example.com"  # the sender's copy keeps its blind copies
    assert message["Reply-To"] == "help@example.com"
    assert message["Message-ID"] == result["message_id"]
    assert message["Date"] is not None and message["X-Jobqueue-Job-Id"] == "7"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and text(plain) == GOOD["body"]
    assert html is not None and "<b>ready</b>" in html.get_content()


async def test_a_retried_job_rewrites_the_same_file_with_the_same_message_id(
    tmp_path: Path,
) -> None:
    ctx = job_context(tmp_path, job_id=9)
    payload = {"to": "ann@example.com", "subject": "hi", "body": "text only"}
    first = await send_email(payload, ctx)
    second = await send_email(payload, ctx)
    other_job = await send_email(payload, job_context(tmp_path, job_id=10))

    assert first["eml_path"] == second["eml_path"] != other_job["eml_path"]
    assert first["message_id"] == second["message_id"] != other_job["message_id"]
    assert len(list((tmp_path / "outbox").iterdir())) == 2
    assert leftover_temp_files(tmp_path) == []
    message = parse(read_file(first["eml_path"]))
    assert message.get_content_type() == "text/plain"
    assert message["Bcc"] is None and message["Cc"] is None


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"subject": "s", "body": "b"}, "to", "is required"),
        ({"to": [], "subject": "s", "body": "b"}, "to", "must not be empty"),
        ({"to": "not an address", "subject": "s", "body": "b"}, "to", "not a valid email"),
        ({"to": "ann@", "subject": "s", "body": "b"}, "to", "not a valid email"),
        ({"to": "ann@@example.com", "subject": "s", "body": "b"}, "to", "not valid"),
        ({"to": "ann@gmail", "subject": "s", "body": "b"}, "to", "bad domain"),
        ({"to": "a@b.com, c@d.com", "subject": "s", "body": "b"}, "to", "give a list instead"),
        ({"to": ["a@example.com", "x y@z"], "subject": "s", "body": "b"}, "to[1]", "not a valid"),
        ({"to": ["a@example.com", 5], "subject": "s", "body": "b"}, "to[1]", "non-empty string"),
        ({"to": {"a": 1}, "subject": "s", "body": "b"}, "to", "string or a list"),
        ({"to": "a@example.com", "cc": "bad", "subject": "s", "body": "b"}, "cc", "not a valid"),
        (
            {
                "to": "a@example.com",
                "bcc": ["ok@example.com", "@x.com"],
                "subject": "s",
                "body": "b",
            },
            "bcc[1]",
            "not a valid",
        ),
        (
            {"to": "a@example.com", "reply_to": "nope", "subject": "s", "body": "b"},
            "reply_to",
            "valid",
        ),
        ({"to": "a@example.com", "body": "b"}, "subject", "is required"),
        ({"to": "a@example.com", "subject": "  ", "body": "b"}, "subject", "must not be empty"),
        (
            {"to": "a@example.com", "subject": "a\r\nBcc: x@evil.com", "body": "b"},
            "subject",
            "line",
        ),
        ({"to": "a@example.com\r\nBcc: x@evil.com", "subject": "s", "body": "b"}, "to", "line"),
        ({"to": "a@example.com", "subject": "s", "body": ["b"]}, "body", "must be a string"),
        ({"to": "a@example.com", "subject": "s", "body": "b", "html": 3}, "html", "string"),
    ],
)
async def test_bad_payloads_fail_permanently_naming_the_field(
    tmp_path: Path, payload: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        await send_email(payload, job_context(tmp_path))
    assert isinstance(caught.value, InvalidPayload) and caught.value.field == field
    assert f"'{field}'" in str(caught.value) and words in str(caught.value)
    assert not (tmp_path / "outbox").exists()


# ------------------------------------------------------------------ a real SMTP server
class Inbox:
    """An aiosmtpd handler that keeps what it receives and refuses `nobody@` mailboxes."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[str] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 2.0.0 accepted"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"mailer",
            b"s3cret",
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: reply 535 on failure


StartServer = Callable[..., Awaitable[tuple[int, Inbox]]]


@pytest.fixture
async def smtp_server() -> AsyncIterator[StartServer]:
    servers: list[asyncio.Server] = []

    async def start(
        *, starttls: ssl.SSLContext | None = None, implicit_tls: ssl.SSLContext | None = None
    ) -> tuple[int, Inbox]:
        inbox = Inbox()

        def protocol() -> SMTP:
            return SMTP(
                inbox,
                hostname="mx.test",
                tls_context=starttls,
                require_starttls=starttls is not None,
                auth_require_tls=False,
                authenticator=inbox.authenticate,
            )

        server = await asyncio.get_running_loop().create_server(
            protocol, "127.0.0.1", 0, ssl=implicit_tls
        )
        servers.append(server)
        return server.sockets[0].getsockname()[1], inbox

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def smtp_context(tmp_path: Path, port: int, **settings: Any) -> JobContext:
    values = {"smtp_tls": "none", "smtp_from": "jobs@example.com", **settings}
    return job_context(tmp_path, job_id=21, smtp_host="127.0.0.1", smtp_port=port, **values)


async def test_sends_over_plain_smtp_with_credentials(
    tmp_path: Path, smtp_server: StartServer
) -> None:
    port, inbox = await smtp_server()
    ctx = smtp_context(tmp_path, port, smtp_username="mailer", smtp_password="s3cret")
    result = await send_email(dict(GOOD), ctx)

    assert result["dry_run"] is False and result["refused"] == {}
    assert inbox.logins == ["mailer"]
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "jobs@example.com"
    assert envelope.rcpt_tos == result["recipients"]
    assert "dave@example.com" in envelope.rcpt_tos
    assert isinstance(envelope.content, bytes)
    message = parse(envelope.content)
    assert message["Bcc"] is None  # blind copies are in the envelope only
    assert message["Message-ID"] == result["message_id"]
    assert message["Subject"] == GOOD["subject"]
    plain = message.get_body(("plain",))
    assert plain is not None and text(plain) == GOOD["body"]
    assert not (tmp_path / "outbox").exists()


async def test_wrong_credentials_are_not_a_permanent_failure(
    tmp_path: Path, smtp_server: StartServer
) -> None:
    port, inbox = await smtp_server()
    ctx = smtp_context(tmp_path, port, smtp_username="mailer", smtp_password="wrong")
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as caught:
        await send_email(dict(GOOD), ctx)
    assert not isinstance(caught.value, PermanentError) and inbox.envelopes == []


async def test_refused_recipients(tmp_path: Path, smtp_server: StartServer) -> None:
    port, inbox = await smtp_server()
    ctx = smtp_context(tmp_path, port)
    partly = {"to": ["ann@example.com", "nobody@example.com"], "subject": "s", "body": "b"}
    result = await send_email(partly, ctx)
    assert list(result["refused"]) == ["nobody@example.com"]
    assert result["refused"]["nobody@example.com"].startswith("550")
    assert inbox.envelopes[0].rcpt_tos == ["ann@example.com"]

    with pytest.raises(PermanentError, match=r"refused every recipient: nobody@example\.com: 550"):
        await send_email({"to": "nobody@example.com", "subject": "s", "body": "b"}, ctx)
    assert len(inbox.envelopes) == 1


async def test_an_unreachable_server_is_a_retryable_failure(tmp_path: Path) -> None:
    server = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(aiosmtplib.SMTPConnectError) as caught:
        await send_email(dict(GOOD), smtp_context(tmp_path, port))
    assert not isinstance(caught.value, PermanentError)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_control_plane_pki(tmp_path_factory.mktemp("smtp-pki"))


def server_tls(files: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files["apiserver.crt"], files["apiserver.key"])
    return context


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_sends_over_tls_verified_against_the_configured_ca(
    tmp_path: Path, smtp_server: StartServer, tls_files: dict[str, Path], mode: str
) -> None:
    context = server_tls(tls_files)
    if mode == "starttls":
        port, inbox = await smtp_server(starttls=context)
    else:
        port, inbox = await smtp_server(implicit_tls=context)
    ctx = smtp_context(tmp_path, port, smtp_tls=mode, smtp_ca_file=str(tls_files["ca.crt"]))
    result = await send_email({"to": "ann@example.com", "subject": "tls", "body": "b"}, ctx)
    assert [e.rcpt_tos for e in inbox.envelopes] == [["ann@example.com"]]
    assert result["recipients"] == ["ann@example.com"]

    untrusted = smtp_context(tmp_path, port, smtp_tls=mode)  # no CA: the self-made cert fails
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)) as caught:
        await send_email({"to": "ann@example.com", "subject": "tls", "body": "b"}, untrusted)
    assert "CERTIFICATE_VERIFY_FAILED" in repr(caught.value) + repr(caught.value.__cause__)
    assert not isinstance(caught.value, PermanentError) and len(inbox.envelopes) == 1


async def test_the_registered_handler_is_this_one() -> None:
    spec = registry.get("emails")
    assert spec is not None and spec.handler is send_email
