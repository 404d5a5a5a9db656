"""send_invoice invoices: draft, finalize, send, overdue, paid late, failed, out of band, void."""

from __future__ import annotations

import pytest
import requests
import stripe

from tests.stripe_local.helpers import events_of


def _open_invoice(client, *, amount=250000, days=30):
    customer = client.v1.customers.create({"email": "finance@ai.example", "name": "AI Co"})
    invoice = client.v1.invoices.create(
        {
            "customer": customer.id,
            "collection_method": "send_invoice",
            "days_until_due": days,
            "currency": "eur",
            "metadata": {"licence_id": "77"},
        }
    )
    client.v1.invoice_items.create(
        {
            "customer": customer.id,
            "invoice": invoice.id,
            "amount": amount,
            "currency": "eur",
            "description": "Blanket licence, 12 months",
        }
    )
    invoice = client.v1.invoices.finalize_invoice(invoice.id)
    return customer, invoice


def test_invoice_sent_then_paid_late_emits_events_in_order(stripe_client, local_stripe_control):
    customer, invoice = _open_invoice(stripe_client)
    assert (invoice.status, invoice.amount_due, invoice.total) == ("open", 250000, 250000)
    prefix = stripe_client.v1.customers.retrieve(customer.id).invoice_prefix
    assert invoice.number == f"{prefix}-0001"
    assert invoice.due_date - invoice.status_transitions.finalized_at == 30 * 86400
    assert invoice.hosted_invoice_url.endswith(f"/invoice/{invoice.id}")
    assert [line.description for line in invoice.lines.data] == ["Blanket licence, 12 months"]
    stripe_client.v1.invoices.send_invoice(invoice.id)

    overdue = local_stripe_control.invoice_mark_overdue(invoice.id)
    result = local_stripe_control.invoice_pay(invoice.id)

    assert result["status"] == "succeeded"
    paid = stripe_client.v1.invoices.retrieve(
        invoice.id, {"expand": ["payments.data.payment.payment_intent.latest_charge"]}
    )
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 250000, 0)
    assert paid.status_transitions.paid_at > overdue["due_date"]
    charge = paid.payments.data[0].payment.payment_intent.latest_charge
    assert (charge.amount, charge.status) == (250000, "succeeded")
    types = [
        e.type
        for e in reversed(
            list(stripe_client.v1.events.list({"type": "invoice.*"}).auto_paging_iter())
        )
    ]
    assert types == [
        "invoice.created",
        "invoice.finalized",
        "invoice.sent",
        "invoice.overdue",
        "invoice.payment_succeeded",
        "invoice.paid",
    ]
    assert events_of(stripe_client, "invoice.paid")[0].data.object.metadata["licence_id"] == "77"


def test_failed_invoice_payment_keeps_it_open(stripe_client, local_stripe_control):
    _, invoice = _open_invoice(stripe_client)
    assert local_stripe_control.invoice_pay(invoice.id, fail=True)["status"] == "declined"
    invoice = stripe_client.v1.invoices.retrieve(invoice.id)
    assert (invoice.status, invoice.attempt_count, invoice.attempted) == ("open", 1, True)
    assert len(events_of(stripe_client, "invoice.payment_failed")) == 1
    with pytest.raises(stripe.CardError) as declined:
        stripe_client.v1.invoices.pay(invoice.id, {"payment_method": "pm_card_chargeDeclined"})
    assert declined.value.code == "card_declined"
    paid = stripe_client.v1.invoices.pay(invoice.id, {"payment_method": "pm_card_visa"})
    assert paid.status == "paid"


def test_hosted_invoice_page_pays(stripe_client):
    _, invoice = _open_invoice(stripe_client, amount=9900)
    page = requests.get(invoice.hosted_invoice_url, timeout=5)
    assert "99.00 EUR" in page.text
    paid = requests.post(invoice.hosted_invoice_url, data={"card": "4242424242424242"}, timeout=5)
    assert paid.status_code == 200
    assert "has been paid" in paid.text
    assert stripe_client.v1.invoices.retrieve(invoice.id).status == "paid"


def test_paid_out_of_band_and_void(stripe_client):
    _, invoice = _open_invoice(stripe_client)
    paid = stripe_client.v1.invoices.pay(invoice.id, {"paid_out_of_band": True})
    assert (paid.status, paid.amount_paid_off_stripe) == ("paid", 250000)
    assert stripe_client.v1.charges.list().data == []
    assert events_of(stripe_client, "invoice.payment_succeeded") == []
    assert len(events_of(stripe_client, "invoice.paid")) == 1

    _, other = _open_invoice(stripe_client)
    voided = stripe_client.v1.invoices.void_invoice(other.id)
    assert voided.status == "void"
    with pytest.raises(stripe.InvalidRequestError, match="not open"):
        stripe_client.v1.invoices.pay(other.id, {"paid_out_of_band": True})


def test_send_invoice_requires_days_until_due(stripe_client):
    customer = stripe_client.v1.customers.create({"email": "x@ai.example"})
    with pytest.raises(stripe.InvalidRequestError, match="days_until_due"):
        stripe_client.v1.invoices.create(
            {"customer": customer.id, "collection_method": "send_invoice"}
        )
