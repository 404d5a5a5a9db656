"""The wire format as stripe-python encodes it, and the signature helper."""

from __future__ import annotations

import time

import pytest
import stripe

from stripe_local.errors import StripeError
from stripe_local.money import fee_amount, format_amount
from stripe_local.signing import signature_header
from stripe_local.wire import Params, decode_form


def test_nested_keys_decode_into_dicts_and_lists():
    raw = (
        "mode=payment&line_items[0][price_data][unit_amount]=1500"
        "&line_items[0][price_data][product_data][name]=Licence&line_items[0][quantity]=2"
        "&line_items[1][quantity]=1&metadata[licence_id]=7&expand[0]=payment_intent"
        "&expand[]=customer"
    )
    assert decode_form(raw) == {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {"unit_amount": "1500", "product_data": {"name": "Licence"}},
                "quantity": "2",
            },
            {"quantity": "1"},
        ],
        "metadata": {"licence_id": "7"},
        "expand": ["payment_intent", "customer"],
    }


def test_expand_brackets_form_appends():
    assert decode_form("expand[]=a&expand[]=b") == {"expand": ["a", "b"]}


def test_params_refuse_bad_integers_and_unknown_names():
    params = Params(decode_form("amount=12.5&colour=red"))
    with pytest.raises(StripeError, match=r"Invalid integer: 12\.5"):
        params.int("amount")
    with pytest.raises(StripeError, match="Received unknown parameter: colour"):
        params.only("amount")


def test_metadata_empty_value_means_unset():
    assert Params(decode_form("metadata[a]=&metadata[b]=2")).metadata() == {"a": None, "b": "2"}


def test_fee_is_one_and_a_half_percent_plus_25_rounded_half_up():
    assert fee_amount(10000) == 175
    assert fee_amount(1999) == 55  # 29.985 -> 30, + 25
    assert fee_amount(100) == 27  # 1.5 -> 2, + 25
    assert format_amount(123456, "eur") == "1,234.56 EUR"
    assert format_amount(500, "jpy") == "500 JPY"


def test_signature_header_verifies_with_the_sdk():
    payload = '{"id": "evt_1", "object": "event"}'
    header = signature_header(payload, "whsec_x")
    assert stripe.WebhookSignature.verify_header(payload, header, "whsec_x", 300)
    rolled = signature_header(payload, "whsec_new", extra_secrets=("whsec_old",))
    assert stripe.WebhookSignature.verify_header(payload, rolled, "whsec_old", 300)
    stale = signature_header(payload, "whsec_x", timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, stale, "whsec_x", 300)
