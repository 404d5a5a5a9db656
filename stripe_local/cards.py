"""Stripe's test card numbers and what each one does.

The numbers and outcomes are Stripe's documented test cards
(https://docs.stripe.com/testing); ``pm_card_*`` are its test PaymentMethod ids, accepted where
the API takes a ``payment_method``. Any other number that passes the Luhn check succeeds as a
generic card; a number that fails it is ``incorrect_number``. Expiry and CVC are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Card:
    number: str
    brand: str = "visa"
    funding: str = "credit"
    decline_code: str | None = None  # None: the charge succeeds
    error_code: str = "card_declined"
    bypass_pending: bool = False

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def succeeds(self) -> bool:
        return self.decline_code is None


DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "lost_card": "Your card was declined.",
    "stolen_card": "Your card was declined.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
    "incorrect_number": "Your card number is incorrect.",
}

TEST_CARDS = {
    c.number: c
    for c in (
        Card("4242424242424242"),
        Card("4000056655665556", funding="debit"),
        Card("5555555555554444", brand="mastercard"),
        Card("378282246310005", brand="amex"),
        Card("4000000000000077", bypass_pending=True),
        Card("4000000000000002", decline_code="generic_decline"),
        Card("4000000000009995", decline_code="insufficient_funds"),
        Card("4000000000009987", decline_code="lost_card"),
        Card("4000000000009979", decline_code="stolen_card"),
        Card("4000000000000069", decline_code="expired_card", error_code="expired_card"),
        Card("4000000000000127", decline_code="incorrect_cvc", error_code="incorrect_cvc"),
        Card("4000000000000119", decline_code="processing_error", error_code="processing_error"),
    )
}

PAYMENT_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_bypassPending": "4000000000000077",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
}


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_for(number_or_pm: str) -> Card:
    """The card a number (spaces and dashes allowed) or a ``pm_card_*`` id stands for."""
    number = PAYMENT_METHODS.get(number_or_pm, number_or_pm)
    number = "".join(ch for ch in number if ch not in " -")
    if number in TEST_CARDS:
        return TEST_CARDS[number]
    if not number.isdigit() or not 12 <= len(number) <= 19 or not luhn_ok(number):
        return Card(number if number.isdigit() else "0000", decline_code="incorrect_number",
                    error_code="incorrect_number")
    brand = {"4": "visa", "5": "mastercard", "3": "amex"}.get(number[0], "unknown")
    return Card(number, brand=brand)
