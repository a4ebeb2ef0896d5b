"""Send SMS: a text to the element's client's phone (or any number a template gives), through the outbox.

The number is normalised to E.164 (national numbers are read in the default region), the text counted in SMS
segments: more than MAX_SEGMENTS is refused when the rule is saved (a text without placeholders, or the part of
one that is always sent) or fails the run (the rendered text). Like Send email, the run succeeds once the SMS
is queued; the message's status says what became of it (sent, then delivered or bounced by the gateway's
receipt).
"""

from typing import Any, Literal

from jinja2 import Environment, TemplateError, nodes
from pydantic import Field

from server.channels import sms_text
from server.channels.sms import e164
from server.config import settings
from server.errors import ActionError
from server.i18n import N_
from server.kinds import Channel, MessageStatus
from server.models import Contact
from server.channels import outbox
from server.rules import clients
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params, Skipped, Template
from server.rules.context import RunContext
from server.rules.preview import ElementView, PreviewContext

# Parses only (never renders), to find the text a template always outputs: same syntax as the rule templates.
_PARSER = Environment(autoescape=False)


class SendSmsParams(Params):
    to: Template = Field(default="", max_length=200,
                         description="a phone number or template; empty: the client's phone")
    client: Literal["any", "contact", "company"] = "any"
    """whose phone number it goes to when `to` is empty: the contact's, the company's, or either"""
    to_type: Literal["any", "mobile", "work", "home", "other"] = "any"
    """which of the client's numbers: mobile, work, home, other, or any"""
    text: Template = Field(min_length=1, max_length=20_000,
                           description=f"the SMS; at most {sms_text.MAX_SEGMENTS} segments (GSM-7: 160 characters in "
                                       "one, 153 per segment of a longer one; UCS-2: 70, 67)")


def static_text(template: str) -> str:
    """What a template outputs whatever its placeholders hold: the literal text outside every block (an
    `{% if %}` branch may not be taken) with the placeholders left out. A lower bound of every rendering."""
    try:
        tree = _PARSER.parse(template)
    except TemplateError:
        return ""  # reported by the template check
    return "".join(child.data for node in tree.body if isinstance(node, nodes.Output)
                   for child in node.nodes if isinstance(child, nodes.TemplateData))


def text_hint(text: str) -> str:
    """The segment count the rule form shows under the text, as the writer types."""
    if "{" not in text:
        return sms_text.describe(text)
    return (f"without its placeholders: {sms_text.describe(static_text(text))}; "
            "the rendered text is counted when it is sent")


class SendSms(Action[SendSmsParams]):
    key = "send_sms"
    title = N_("Send SMS")
    summary = N_("Texts the client's phone (or any number) through the SMS gateway, from the outbox.")
    gives = N_("the message and the number it went to")
    group = "communication"
    Params = SendSmsParams
    outputs = ("message_id", "to")
    hinted_params = ("text",)
    example = Example("Confirm the appointment by SMS", {
        "text": "Hello {{deal.contact.name|default('there')}}, thank you for your order {{deal.title}}. "
                "We will call you to agree a date.",
        "to_type": "any",
    })

    def param_hints(self, params: dict[str, Any]) -> dict[str, str]:
        """Live notes for the rule form, by param name, from the values as typed (not validated)."""
        text = params.get("text")
        return {"text": text_hint(text)} if isinstance(text, str) else {}

    async def check(self, params: SendSmsParams, *, stage_id: int) -> list[tuple[str, str]]:
        problems = []
        if params.to.strip() and "{" not in params.to:
            try:
                e164(params.to.strip(), region=settings().default_region)
            except ValueError as exc:
                problems.append(("to", str(exc)))
        if "{" not in params.text:
            if too_long := sms_text.limit_problem(params.text):
                problems.append(("text", f"the text {too_long}"))
        elif (always := sms_text.segments(static_text(params.text))).over_limit:
            problems.append(("text", f"without its placeholders the text is already {always.summary()}; "
                                     f"at most {sms_text.MAX_SEGMENTS}"))
        return problems

    async def execute(self, ctx: RunContext, params: SendSmsParams) -> Done | Skipped:
        if too_long := sms_text.limit_problem(params.text):  # rendered: the placeholders' values count now
            raise ActionError(f"the rendered text {too_long}")
        recipient = await self._recipient(ctx, params)
        message = await ctx.send_message(channel=Channel.sms, recipient=recipient, sender=settings().sms_from,
                                         text=params.text)
        outputs = {"message_id": message.id, "to": recipient}
        if message.status == MessageStatus.suppressed:
            return Skipped(message.reason or "the number is suppressed", outputs)
        return Done(outputs)

    async def _recipient(self, ctx: ElementView, params: SendSmsParams) -> str:
        region = settings().default_region
        if params.to.strip():
            try:
                return e164(params.to.strip(), region=region)
            except ValueError as exc:
                raise ActionError(f"to: {exc}") from None
        number, row = await clients.client_address(ctx.element_type, ctx.element, "phone", client=params.client,
                                                   address_type=params.to_type)
        try:
            return e164(number, region=region)
        except ValueError as exc:
            kind = "contact" if isinstance(row, Contact) else "company"
            raise ActionError(f"the {kind} {row.name}'s phone: {exc}") from None

    async def simulate(self, ctx: PreviewContext, params: SendSmsParams) -> str:
        recipient = await self._recipient(ctx, params)
        text = f"sends the SMS “{params.text[:160]}” to {recipient} ({sms_text.describe(params.text)})"
        if (entry := await outbox.suppressed(recipient)) is not None:
            text += f", but it would not be delivered: {outbox.suppression_reason(entry)}"
        return text

    def describe(self, params: SendSmsParams, names: Names = NO_NAMES) -> str:
        to = params.to or ("the client" if params.client == "any" else f"the {params.client}")
        kind = "" if params.to or params.to_type == "any" else f" ({params.to_type} number)"
        text = params.text if len(params.text) <= 80 else params.text[:79] + "…"
        return f"Sends the SMS “{text}” to {to}{kind}"


ACTION = SendSms()
