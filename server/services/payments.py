"""Payments received for leads and deals: recorded once (an idempotency key makes a retry the same payment),
on the element's timeline, and an event "payment received" triggers listen to."""

import re
from decimal import Decimal, InvalidOperation

from server.db import transaction
from server.errors import ValidationFailed
from server.models import Payment
from server.rules import elements, engine
from server.rules.triggering import Event, Occurrence
from server.rules.triggers.base import PAYMENT_RECEIVED
from server.services.access import Acting, require_element

LARGEST = Decimal("1e15")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


async def record_payment(element_type: str, element_id: int, *, amount: str | Decimal, currency: str = "",
                         reference: str = "", idempotency_key: str | None = None,
                         actor: Acting) -> tuple[Payment, bool]:
    """(the payment, whether it is new). A known idempotency key answers the payment it recorded first."""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise ValidationFailed.one("amount", f"must be a number, not {amount!r}") from None
    if not value.is_finite() or value <= 0 or value >= LARGEST:
        raise ValidationFailed.one("amount", "must be a positive amount below 10^15")
    if len(reference) > 200:
        raise ValidationFailed.one("reference", "must be at most 200 characters")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise ValidationFailed.one("idempotency_key", "must be 1 to 200 characters")
    async with transaction():
        element = await elements.load(element_type, element_id, lock=True)
        require_element(actor, element)
        code = (currency or element.currency or "EUR").upper()
        if not _CURRENCY.match(code):
            raise ValidationFailed.one("currency", f"must be a three-letter currency code, not {currency!r}")
        if idempotency_key:
            first = await Payment.get_or_none(idempotency_key=idempotency_key)
            if first is not None:
                if (first.element_type, first.element_id) != (element_type, element_id):
                    raise ValidationFailed.one("idempotency_key", "was used for a payment of another element")
                return first, False
        payment = await Payment.create(element_type=element_type, element_id=element_id, amount=value, currency=code,
                                       reference=reference, idempotency_key=idempotency_key,
                                       recorded_by_id=actor.user_id)
        note = f" ({reference})" if reference else ""
        await elements.add_timeline_entry(element_type, element_id, "history",
                                          f"Payment of {value} {code} received{note}", author_id=actor.user_id)
        await engine.fire_triggers(Occurrence(
            Event(PAYMENT_RECEIVED, {"amount": str(value), "currency": code, "reference": reference,
                                     "payment_id": payment.id}),
            element_type=element_type, element_id=element_id))
    return payment, True
