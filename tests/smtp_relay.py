"""A real SMTP relay on loopback (aiosmtpd) that requires STARTTLS and a login, as production
relays do, and the code as a person reads it in an email."""

import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.temporal_server import free_port
from tests.tls_proxy import certificates_make

LOGIN = ("coffee", "s3cret/pass")


class Mailbox:
    """An aiosmtpd handler: keeps each message it accepts, and refuses the addresses it is told
    to, with the reply it is told."""

    def __init__(self) -> None:
        self.envelopes = []
        self.logins: list[bytes] = []
        self.refusals: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refusals:
            return self.refusals[address].replace("{address}", address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        wanted = tuple(part.encode() for part in LOGIN)
        ok = isinstance(auth_data, LoginPassword) and auth_data == wanted
        if ok:
            self.logins.append(auth_data.login)
        return AuthResult(success=ok)


@contextmanager
def smtp_relay(directory: Path) -> Iterator[tuple[Mailbox, int, Path]]:
    """Run a relay with a certificate from a test CA; yield its mailbox, port and the CA file."""
    certificates = certificates_make(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=mailbox.authenticate,
    )
    controller.start()
    try:
        yield mailbox, port, certificates.ca
    finally:
        controller.stop()


def code_in_email(text: str) -> str:
    """The code on a line of its own in an email's text, as a person reads it."""
    (code,) = [line.strip() for line in text.splitlines() if re.fullmatch(r"\s+\d{6}", line)]
    return code
