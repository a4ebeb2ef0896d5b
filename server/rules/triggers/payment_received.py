"""Payment received: a payment for the element is recorded (the recordPayment mutation or the payments webhook)."""

from decimal import Decimal
from pydantic import Field

from server.i18n import N_
from server.rules.triggers.base import Event, PAYMENT_RECEIVED, Settings, TriggerExample, TriggerType


class PaymentReceivedSettings(Settings):
    min_amount: Decimal | None = Field(default=None, ge=0, le=Decimal("1e15"))


class PaymentReceived(TriggerType[PaymentReceivedSettings]):
    key = "payment_received"
    title = N_("Payment received")
    summary = N_("A payment for the element is recorded.")
    gives = N_("the amount, currency and reference")
    event = PAYMENT_RECEIVED
    Settings = PaymentReceivedSettings
    data_fields = ("amount", "currency", "reference", "payment_id")
    example = TriggerExample("Payment received", {"min_amount": "100"}, Event(PAYMENT_RECEIVED, {"amount": "250.00", "currency": "EUR", "reference": "INV-1"}))

    def matches(self, settings: PaymentReceivedSettings, event: Event) -> str | None:
        if settings.min_amount is not None and Decimal(str(event.data.get("amount") or 0)) < settings.min_amount:
            return f"the payment of {event.data.get('amount')} is below {settings.min_amount}"
        return None

    def describe(self, settings: PaymentReceivedSettings) -> str:
        at_least = f" of at least {settings.min_amount}" if settings.min_amount is not None else ""
        return f"When a payment{at_least} is received"


TRIGGER = PaymentReceived()
