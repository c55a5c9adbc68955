"""The email channel (worker process): the code in an email, through Django's email framework.

EMAIL_BACKEND (set from EMAIL_URL) decides where the email goes: the worker's console in
development, memory (`django.core.mail.outbox`) in tests, an SMTP server in production. Each
email has a plain-text and an HTML part, from `templates/verification/channels/email.txt` and
`email.html`; the code is in their bodies, never in the subject (`email_subject.txt`) or a link.

A customer with no email on file raises `channels.ChannelUnusable`. An SMTP server that refuses
the address itself for good (an enhanced status 5.1.x: no such mailbox, no such domain) raises
`channels.Undeliverable`; any other error is transient and retried. Errors that would carry the
address carry it masked, since their words reach logs and the workflow's history.
"""

import re
import smtplib

from django.conf import settings
from django.core.mail import DNS_NAME, EmailMultiAlternatives, make_msgid

from coffeeshop.emails import email_mask
from verification.channels import (
    ChannelUnusable,
    CodeDelivery,
    Undeliverable,
    channel_message_render,
)
from verification.contracts import Channel, UndeliverableReason

# RFC 3463: 5.1.x is about the address (bad mailbox, bad domain, bad syntax); 5.7.x (a relay
# that refuses us, say) is about us, and a retry or an operator can mend it.
ADDRESS_REFUSED = re.compile(r"5\.1\.\d{1,3}\b")


class EmailChannel:
    """The `email` channel: one email with the code, through Django's EMAIL_BACKEND."""

    def send(self, delivery: CodeDelivery) -> str | None:
        if not delivery.email:
            raise ChannelUnusable(Channel.EMAIL)
        # A header may not span lines, whatever a translation does.
        subject = " ".join(channel_message_render("email_subject.txt", delivery).split())
        message_id = make_msgid(domain=DNS_NAME)
        message = EmailMultiAlternatives(
            subject=subject,
            body=channel_message_render("email.txt", delivery),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[delivery.email],
            # RFC 3834: an automatic message, so out-of-office replies leave it alone.
            headers={"Message-ID": message_id, "Auto-Submitted": "auto-generated"},
        )
        message.attach_alternative(channel_message_render("email.html", delivery), "text/html")
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refused(exc, delivery.email) from None
        return message_id


def _refused(exc: smtplib.SMTPRecipientsRefused, address: str) -> Exception:
    """The SMTP server's refusal of `address`, sorted permanent or not, the address masked."""
    code, reply = next(iter(exc.recipients.values()), (0, b""))
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    text = re.sub(re.escape(address), email_mask(address), text, flags=re.IGNORECASE)
    if 500 <= code < 600 and ADDRESS_REFUSED.match(text):
        return Undeliverable(UndeliverableReason.UNREACHABLE, code)
    return smtplib.SMTPRecipientsRefused({email_mask(address): (code, text.encode())})
