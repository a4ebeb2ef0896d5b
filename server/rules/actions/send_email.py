"""Send email: an email to the element's client (or any address a template gives), through the outbox.

The message is written with the run; its delivery is its own durable step (attempts, backoff, status), so the
run succeeds once the email is queued and the message's status says what became of it.
"""

import html as html_lib
import re
from typing import Literal

from pydantic import Field, model_validator

from server.errors import ActionError
from server.i18n import N_
from server.kinds import Channel, MessageStatus
from server.models import Document, MailSender
from server.config import settings
from server.channels import outbox
from server.rules import clients
from server.rules.actions.base import (
    NO_NAMES, Action, Done, Example, MailSenderId, Names, Params, Skipped, Template,
)
from server.rules.context import RunContext
from server.rules.preview import ElementView, PreviewContext

_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


class SendEmailParams(Params):
    to: Template = Field(default="", max_length=320, description="an address or template; empty: the client's email")
    client: Literal["any", "contact", "company"] = "any"
    """whose email address it goes to when `to` is empty: the contact's, the company's, or either"""
    to_type: Literal["any", "work", "home", "other"] = "any"
    """which of the client's addresses: work, home, other, or any"""
    sender: MailSenderId | None = Field(default=None, description="empty: the default sender")
    subject: Template = Field(min_length=1, max_length=998)
    """the subject (a template)"""
    html: Template = Field(default="", max_length=200_000)
    """the HTML body (a template); empty: the text part alone"""
    text: Template = Field(default="", max_length=200_000, description="the plain-text part; empty: made from the HTML")
    attachments: Template = Field(default="", max_length=500, description=(
        "documents made earlier in the run, whose PDFs go with the email: their ids, comma-separated, e.g. "
        "{{rules.offer.document_id}}"))

    @model_validator(mode="after")
    def _has_body(self) -> "SendEmailParams":
        if not self.html.strip() and not self.text.strip():
            raise ValueError("write the email: an HTML body or a text (or both)")
        return self


def text_of(html: str) -> str:
    """A readable plain-text alternative of an HTML body."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</h[1-6]>|</li>|</tr>", "\n", text)
    text = re.sub(r"(?i)<a\b[^>]*href=\"([^\"]*)\"[^>]*>(.*?)</a>", r"\2 (\1)", text)
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", text))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()


class SendEmail(Action[SendEmailParams]):
    key = "send_email"
    title = N_("Send email")
    summary = N_("Emails the client (or any address), from the outbox with retries.")
    gives = N_("the message and the address it went to")
    group = "communication"
    Params = SendEmailParams
    outputs = ("message_id", "to")
    example = Example("Send the offer", {
        "subject": "Your offer: {{deal.title}}",
        "html": "<p>Hello {{deal.contact.name|default('there')}},</p><p>here is the offer for {{deal.title}}.</p>",
    })

    async def check(self, params: SendEmailParams, *, stage_id: int) -> list[tuple[str, str]]:
        problems = []
        if params.sender is not None and not await MailSender.exists(id=params.sender):
            problems.append(("sender", f"sender {params.sender} is not configured"))
        if params.to and "{" not in params.to and not _ADDRESS.match(params.to.strip()):
            problems.append(("to", f"'{params.to}' is not an email address"))
        return problems

    async def execute(self, ctx: RunContext, params: SendEmailParams) -> Done | Skipped:
        recipient = await self._recipient(ctx, params)
        sender = await (MailSender.get_or_none(id=params.sender) if params.sender is not None
                        else MailSender.filter(is_default=True).order_by("id").first())
        address, name = (sender.address, sender.name) if sender else (settings().mail_from, "")
        meta: dict[str, object] = {"reply_to": sender.reply_to} if sender and sender.reply_to else {}
        if attached := await self._attachments(ctx, params.attachments):
            meta["attachments"] = attached
        message = await ctx.send_message(
            channel=Channel.email, recipient=recipient, sender=address, sender_name=name, subject=params.subject,
            html=params.html, text=params.text or text_of(params.html), meta=meta or None,
        )
        outputs = {"message_id": message.id, "to": recipient}
        if message.status == MessageStatus.suppressed:
            return Skipped(message.reason or "the address is suppressed", outputs)
        return Done(outputs)

    async def _attachments(self, ctx: RunContext, rendered: str) -> list[int]:
        """The ids of the element's documents named (their PDFs are attached when the email is sent: a PDF still
        being made holds the email back; one that could not be made fails it)."""
        ids: list[int] = []
        for part in (p.strip() for p in rendered.split(",")):
            if not part:
                continue
            if not part.isdigit():
                raise ActionError(f"'attachments' rendered to '{rendered[:100]}': name documents by their ids")
            document = await Document.get_or_none(id=int(part), element_type=ctx.element_type,
                                                  element_id=ctx.element.id)
            if document is None:
                raise ActionError(f"'attachments': document {part} is not a document of this {ctx.element_type}")
            if document.pdf_status == "failed":
                raise ActionError(f"'attachments': the PDF of document {document.number} could not be made: "
                                  f"{document.pdf_error}")
            ids.append(document.id)
        return ids

    async def _recipient(self, ctx: ElementView, params: SendEmailParams) -> str:
        if params.to.strip():
            recipient = params.to.strip()
            if not _ADDRESS.match(recipient):
                raise ActionError(f"'to' rendered to '{recipient[:100]}', which is not an email address")
            return recipient
        address, _ = await clients.client_address(ctx.element_type, ctx.element, "email", client=params.client,
                                                  address_type=params.to_type)
        return address

    async def simulate(self, ctx: PreviewContext, params: SendEmailParams) -> str:
        recipient = await self._recipient(ctx, params)
        sender = await (MailSender.get_or_none(id=params.sender) if params.sender is not None
                        else MailSender.filter(is_default=True).order_by("id").first())
        address = sender.address if sender else settings().mail_from
        text = f"sends the email “{params.subject[:80]}” to {recipient} from {address}"
        if params.attachments.strip():
            text += f" with the PDFs of documents {params.attachments.strip()} attached"
        if (entry := await outbox.suppressed(recipient)) is not None:
            text += f", but it would not be delivered: {outbox.suppression_reason(entry)}"
        return text

    def describe(self, params: SendEmailParams, names: Names = NO_NAMES) -> str:
        to = params.to or ("the client" if params.client == "any" else f"the {params.client}")
        kind = "" if params.to or params.to_type == "any" else f" ({params.to_type} address)"
        attached = " with the documents' PDFs attached" if params.attachments.strip() else ""
        return f"Sends the email “{params.subject[:80]}” to {to}{kind}{attached}"


ACTION = SendEmail()
