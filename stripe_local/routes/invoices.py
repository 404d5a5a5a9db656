"""Invoice items, invoices (send_invoice), the hosted invoice page.

Mirrors https://docs.stripe.com/api/invoices and /api/invoiceitems as an enterprise buyer sees
them (``collection_method=send_invoice`` with net terms):

- ``POST /v1/invoices`` makes a ``draft``; ``POST /v1/invoiceitems`` with ``invoice=in_...``
  adds a line (items without ``invoice`` stay pending and are only pulled into a new invoice
  with ``pending_invoice_items_behavior=include``: the default has been ``exclude`` since API
  version 2022-08-01);
- ``finalize`` -> ``open`` with a ``number`` (``PREFIX-0001``), ``hosted_invoice_url`` and
  ``due_date = finalized_at + days_until_due`` (``invoice.finalized``; a zero total is paid at
  once); ``send`` emits ``invoice.sent`` (no e-mail, as in test mode); ``void`` (``open`` only);
  ``pay`` with ``paid_out_of_band=true`` (no charge, ``amount_paid_off_stripe``) or with a
  ``payment_method`` such as ``pm_card_visa``/``pm_card_chargeDeclined``;
- the hosted page ``GET /invoice/in_...`` and ``POST /_test/invoices/{id}/pay`` charge a card:
  success -> ``paid`` with ``status_transitions.paid_at``, a PaymentIntent, a Charge and its
  balance transaction, ``invoice.payment_succeeded`` + ``invoice.paid``; decline ->
  ``attempt_count``+1, still ``open``, ``invoice.payment_failed``;
- ``POST /_test/invoices/{id}/mark_overdue`` moves ``due_date`` into the past and emits
  ``invoice.overdue``, so "paid late" can be tested without waiting.

``expand[]=payments`` includes the invoice's payments (``invoice_payment`` objects pointing at
the PaymentIntent), as on current API versions where ``invoice.payment_intent`` no longer
exists.

Simplified: no automatic collection (``charge_automatically`` invoices are finalized but never
charged by themselves), no tax, discounts, credit notes, ``mark_uncollectible``, PDFs or
reminders; the PaymentIntent is created at the first payment attempt, not at finalization;
the invoice currency defaults to the included items', the customer's, then ``usd``.
"""

from __future__ import annotations

from typing import Any

from stripe_local import pages
from stripe_local.cards import DECLINE_MESSAGES, card_for
from stripe_local.errors import StripeError, card_error, invalid_request, resource_missing
from stripe_local.router import Request, Response, RouteTable
from stripe_local.routes.payments import payment_intent_attempt, payment_intent_create
from stripe_local.state import Store, random_token, sub_list
from stripe_local.wire import metadata_apply, paginate, public

routes = RouteTable("api")


# -- invoice items ------------------------------------------------------------------------------
def _line_for(item: dict[str, Any], invoice_id: str) -> dict[str, Any]:
    return {
        "id": "il_" + random_token(),
        "object": "line_item",
        "amount": item["amount"],
        "currency": item["currency"],
        "description": item["description"],
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": dict(item["metadata"]),
        "parent": {
            "type": "invoice_item_details",
            "invoice_item_details": {"invoice_item": item["id"], "proration": False,
                                     "proration_details": {"credited_items": None},
                                     "subscription": None},
            "subscription_item_details": None,
        },
        "period": dict(item["period"]),
        "pretax_credit_amounts": [],
        "pricing": {"price_details": None, "type": "price_details",
                    "unit_amount_decimal": item["pricing"]["unit_amount_decimal"]},
        "quantity": item["quantity"],
        "subtotal": item["amount"],
        "taxes": [],
    }


def _recalculate(invoice: dict[str, Any]) -> None:
    total = sum(line["amount"] for line in invoice["lines"]["data"])
    invoice.update(subtotal=total, subtotal_excluding_tax=total, total=total,
                   total_excluding_tax=total, amount_due=total,
                   amount_remaining=total - invoice["amount_paid"])


def _attach(store: Store, invoice: dict[str, Any], item: dict[str, Any]) -> None:
    item["invoice"] = invoice["id"]
    invoice["lines"]["data"].append(_line_for(item, invoice["id"]))
    invoice["lines"]["total_count"] = len(invoice["lines"]["data"])
    _recalculate(invoice)


@routes.post("/v1/invoiceitems")
def invoice_item_create(req: Request) -> dict[str, Any]:
    store = req.store
    p = req.params.only("customer", "amount", "currency", "description", "metadata", "invoice",
                        "quantity", "unit_amount_decimal", "period")
    customer = req.find("customer", p.str("customer", required=True) or "", param="customer")
    invoice = None
    if p.str("invoice"):
        invoice = req.find("invoice", p.str("invoice") or "", param="invoice")
        if invoice["status"] != "draft":
            raise invalid_request(
                f"You can only add invoice items to draft invoices; {invoice['id']} is "
                f"{invoice['status']}.", param="invoice", code="invoice_not_editable")
        if invoice["customer"] != customer["id"]:
            raise invalid_request("The invoice belongs to another customer.", param="invoice")
    currency = p.currency(required=invoice is None) or (invoice or {}).get("currency")
    if invoice and currency != invoice["currency"]:
        raise invalid_request(
            f"The currency of the invoice item ({currency}) must match the currency of the "
            f"invoice ({invoice['currency']}).", param="currency")
    quantity = p.int("quantity", minimum=1, default=1)
    assert quantity is not None
    if p.has("amount"):
        amount = p.int("amount")
        unit = str(amount // quantity) if amount is not None else "0"
    elif p.has("unit_amount_decimal"):
        unit = p.str("unit_amount_decimal") or "0"
        if not unit.isdigit():
            raise invalid_request(f"Invalid decimal: {unit}", param="unit_amount_decimal")
        amount = int(unit) * quantity
    else:
        raise invalid_request("Missing required param: amount.", param="amount",
                              code="parameter_missing")
    assert amount is not None
    metadata = metadata_apply({}, p.metadata())
    req.begin()
    now = store.now()
    item = {
        "id": store.new_id("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer["id"],
        "date": now,
        "description": p.str("description"),
        "discountable": True,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": metadata,
        "net_amount": amount,
        "parent": None,
        "period": {"end": now, "start": now},
        "pricing": {"price_details": None, "type": "price_details",
                    "unit_amount_decimal": unit},
        "proration": False,
        "quantity": quantity,
        "tax_rates": [],
        "test_clock": None,
    }
    store.add(item, account=req.account)
    if invoice:
        _attach(store, invoice, item)
    store.emit("invoiceitem.created", item, account=req.account)
    return req.render(item)


@routes.get("/v1/invoiceitems/{id}")
def invoice_item_retrieve(req: Request) -> dict[str, Any]:
    return req.render(req.find("invoiceitem", req.args["id"]))


@routes.get("/v1/invoiceitems")
def invoice_item_list(req: Request) -> dict[str, Any]:
    customer = req.params.str("customer")
    invoice = req.params.str("invoice")
    pending = req.params.bool("pending")
    items = req.store.all(
        "invoiceitem", account=req.account,
        where=lambda i: (customer is None or i["customer"] == customer)
        and (invoice is None or i["invoice"] == invoice)
        and (pending is None or (i["invoice"] is None) == pending),
    )
    return paginate(items, req.params, "/v1/invoiceitems", req.render)


# -- invoices -----------------------------------------------------------------------------------
def _payments(store: Store, invoice: dict[str, Any]) -> dict[str, Any]:
    found = store.all("invoice_payment", where=lambda p: p["invoice"] == invoice["id"])
    return sub_list(found, f"/v1/invoice_payments?invoice={invoice['id']}")


def register_includables(store: Store) -> None:
    store.includables[("invoice", "payments")] = _payments


@routes.post("/v1/invoices")
def invoice_create(req: Request) -> dict[str, Any]:
    store = req.store
    p = req.params.only("customer", "collection_method", "days_until_due", "due_date",
                        "description", "metadata", "currency", "auto_advance",
                        "pending_invoice_items_behavior", "footer")
    customer = req.find("customer", p.str("customer", required=True) or "", param="customer")
    method = p.str("collection_method", choices=("charge_automatically", "send_invoice"),
                   default="charge_automatically")
    days = p.int("days_until_due", minimum=0)
    due_date = p.int("due_date")
    if method == "send_invoice" and days is None and due_date is None:
        raise invalid_request(
            "Invoices with `collection_method=send_invoice` must have a `days_until_due` or "
            "`due_date`.", param="days_until_due")
    if method == "charge_automatically" and (days is not None or due_date is not None):
        raise invalid_request(
            "`days_until_due` and `due_date` can only be set when `collection_method` is "
            "`send_invoice`.", param="days_until_due")
    behavior = p.str("pending_invoice_items_behavior", choices=("include", "exclude"),
                     default="exclude")
    pending = [] if behavior == "exclude" else [
        i for i in store.all("invoiceitem", account=req.account)
        if i["customer"] == customer["id"] and i["invoice"] is None
    ]
    pending.reverse()  # oldest first, as lines appear on the invoice
    currency = p.currency(required=False) or (pending[0]["currency"] if pending else None) \
        or customer["currency"] or "usd"
    for item in pending:
        if item["currency"] != currency:
            raise invalid_request(
                f"Pending invoice item {item['id']} is in {item['currency']}, not {currency}.",
                param="currency")
    metadata = metadata_apply({}, p.metadata())
    req.begin()
    now = store.now()
    invoice_id = store.new_id("in")
    invoice: dict[str, Any] = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Blanket (local Stripe)",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": p.bool("auto_advance", default=False),
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None,
                          "provider": None, "status": None},
        "automatically_finalizes_at": None,
        "billing_reason": "manual",
        "collection_method": method,
        "confirmation_secret": None,
        "created": now,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_address": customer["address"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": p.str("description"),
        "discounts": [],
        "due_date": due_date,
        "effective_at": None,
        "ending_balance": None,
        "footer": p.str("footer"),
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": sub_list([], f"/v1/invoices/{invoice_id}/lines"),
        "livemode": False,
        "metadata": metadata,
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None,
                             "payment_method_types": None},
        "period_end": now,
        "period_start": now,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None,
                               "paid_at": None, "voided_at": None},
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
        "_days_until_due": days,  # a create/update parameter, not a field of the object
    }
    store.add(invoice, account=req.account)
    for item in pending:
        _attach(store, invoice, item)
    store.emit("invoice.created", invoice, account=req.account)
    return req.render(invoice)


@routes.get("/v1/invoices/{id}")
def invoice_retrieve(req: Request) -> dict[str, Any]:
    return req.render(req.find("invoice", req.args["id"]))


@routes.get("/v1/invoices/{id}/lines")
def invoice_lines(req: Request) -> dict[str, Any]:
    invoice = req.find("invoice", req.args["id"])
    return paginate(list(reversed(invoice["lines"]["data"])), req.params,
                    f"/v1/invoices/{invoice['id']}/lines")


@routes.get("/v1/invoices")
def invoice_list(req: Request) -> dict[str, Any]:
    customer = req.params.str("customer")
    status = req.params.str("status")
    items = req.store.all(
        "invoice", account=req.account,
        where=lambda i: (customer is None or i["customer"] == customer)
        and (status is None or i["status"] == status),
    )
    return paginate(items, req.params, "/v1/invoices", req.render)


@routes.post("/v1/invoices/{id}")
def invoice_update(req: Request) -> dict[str, Any]:
    invoice = req.find("invoice", req.args["id"])
    p = req.params.only("metadata", "description", "footer", "days_until_due", "due_date",
                        "auto_advance")
    changes: dict[str, Any] = {}
    if p.has("metadata"):
        changes["metadata"] = metadata_apply(invoice["metadata"], p.metadata())
    for key in ("description", "footer"):
        if p.has(key):
            changes[key] = p.str(key)
    if p.has("days_until_due"):
        changes["_days_until_due"] = p.int("days_until_due", minimum=0)
    if p.has("due_date"):
        changes["due_date"] = p.int("due_date")
    if p.has("auto_advance"):
        changes["auto_advance"] = p.bool("auto_advance")
    if invoice["status"] != "draft" and set(changes) - {"metadata"}:
        raise invalid_request("Finalized invoices can't be edited except for metadata.",
                              code="invoice_not_editable")
    req.begin()
    previous = {k: invoice[k] for k in changes if invoice[k] != changes[k]}
    invoice.update(changes)
    if previous:
        req.store.emit("invoice.updated", invoice, account=req.account, previous=previous)
    return req.render(invoice)


@routes.delete("/v1/invoices/{id}")
def invoice_delete(req: Request) -> dict[str, Any]:
    invoice = req.find("invoice", req.args["id"])
    if invoice["status"] != "draft":
        raise invalid_request("You can only delete draft invoices.", code="invoice_not_editable")
    req.begin()
    req.store.remove(invoice["id"])
    req.store.emit("invoice.deleted", invoice, account=req.account)
    return {"id": invoice["id"], "object": "invoice", "deleted": True}


def _mark_paid(store: Store, invoice: dict[str, Any], *, off_stripe: bool) -> None:
    account = invoice["_account"]
    now = store.now()
    previous = {"status": invoice["status"], "amount_paid": invoice["amount_paid"]}
    invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
    if off_stripe:
        invoice["amount_paid_off_stripe"] = invoice["amount_due"]
    invoice["status_transitions"]["paid_at"] = now
    if not off_stripe:
        store.emit("invoice.payment_succeeded", invoice, account=account, previous=previous)
    store.emit("invoice.paid", invoice, account=account, previous=previous)


@routes.post("/v1/invoices/{id}/finalize")
def invoice_finalize(req: Request) -> dict[str, Any]:
    store = req.store
    invoice = req.find("invoice", req.args["id"])
    req.params.only("auto_advance")
    if invoice["status"] != "draft":
        raise invalid_request("This invoice is already finalized, you can't re-finalize a "
                              "non-draft invoice.", code="invoice_not_editable")
    req.begin()
    customer = store.get(invoice["customer"])
    now = store.now()
    if customer is not None:
        invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
    invoice.update(status="open", effective_at=now,
                   hosted_invoice_url=f"{store.base_url}/invoice/{invoice['id']}")
    if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
        invoice["due_date"] = now + 86400 * (invoice["_days_until_due"] or 0)
    invoice["status_transitions"]["finalized_at"] = now
    store.emit("invoice.finalized", invoice, account=req.account,
               previous={"status": "draft"})
    if invoice["amount_due"] == 0:
        _mark_paid(store, invoice, off_stripe=False)
    return req.render(invoice)


@routes.post("/v1/invoices/{id}/send")
def invoice_send(req: Request) -> dict[str, Any]:
    invoice = req.find("invoice", req.args["id"])
    req.params.only()
    if invoice["collection_method"] != "send_invoice":
        raise invalid_request("You can only manually send an invoice if its collection method "
                              "is 'send_invoice'.")
    if invoice["status"] == "draft":
        raise invalid_request("You can't send a draft invoice; finalize it first.",
                              code="invoice_not_editable")
    req.begin()
    req.store.emit("invoice.sent", invoice, account=req.account)
    return req.render(invoice)


@routes.post("/v1/invoices/{id}/void")
def invoice_void(req: Request) -> dict[str, Any]:
    invoice = req.find("invoice", req.args["id"])
    req.params.only()
    if invoice["status"] not in ("open", "uncollectible"):
        raise invalid_request(f"You can only void open invoices; this one is "
                              f"{invoice['status']}.")
    req.begin()
    previous = {"status": invoice["status"]}
    invoice["status"] = "void"
    invoice["status_transitions"]["voided_at"] = req.store.now()
    req.store.emit("invoice.voided", invoice, account=req.account, previous=previous)
    return req.render(invoice)


def invoice_pay_card(store: Store, invoice: dict[str, Any], card_number: str,
                     ) -> dict[str, Any]:
    """Charge a card for what is left on an open invoice; raises ``card_error`` on decline."""
    card = card_for(card_number)
    if card.decline_code == "incorrect_number":
        raise card_error(DECLINE_MESSAGES["incorrect_number"], code="incorrect_number")
    account = invoice["_account"]
    payment = next(iter(store.all("invoice_payment",
                                  where=lambda p: p["invoice"] == invoice["id"])), None)
    if payment is None:
        intent = payment_intent_create(
            store, amount=invoice["amount_remaining"], currency=invoice["currency"],
            customer=invoice["customer"], metadata={}, description="Payment for Invoice",
            account=account)
        payment = {
            "id": store.new_id("inpay"),
            "object": "invoice_payment",
            "amount_paid": None,
            "amount_requested": invoice["amount_remaining"],
            "created": store.now(),
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
            "status": "open",
            "status_transitions": {"canceled_at": None, "paid_at": None},
        }
        store.add(payment, account=account)
    else:
        intent = store.get(payment["payment"]["payment_intent"])
        assert intent is not None
    charge = payment_intent_attempt(store, intent, card, email=invoice["customer_email"])
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    if charge["status"] != "succeeded":
        store.emit("invoice.payment_failed", invoice, account=account)
        raise card_error(charge["failure_message"], code=charge["failure_code"],
                         decline_code=charge["outcome"]["reason"],
                         extra={"charge": charge["id"], "payment_intent": public(intent)})
    payment.update(status="paid", amount_paid=charge["amount"])
    payment["status_transitions"]["paid_at"] = store.now()
    _mark_paid(store, invoice, off_stripe=False)
    return charge


def _require_open(invoice: dict[str, Any]) -> None:
    if invoice["status"] != "open":
        raise invalid_request(f"Invoice {invoice['id']} is {invoice['status']}, not open; "
                              "only open invoices can be paid.")


@routes.post("/v1/invoices/{id}/pay")
def invoice_pay(req: Request) -> dict[str, Any]:
    invoice = req.find("invoice", req.args["id"])
    p = req.params.only("paid_out_of_band", "payment_method", "forgive", "off_session")
    _require_open(invoice)
    out_of_band = p.bool("paid_out_of_band", default=False)
    payment_method = p.str("payment_method")
    if not out_of_band and not payment_method:
        raise invalid_request(
            "This invoice has no payment method to charge: pass `payment_method` (e.g. "
            "pm_card_visa), set `paid_out_of_band=true`, or pay on the hosted invoice page.",
            param="payment_method")
    req.begin()
    if out_of_band:
        _mark_paid(req.store, invoice, off_stripe=True)
    else:
        assert payment_method is not None
        invoice_pay_card(req.store, invoice, payment_method)
    return req.render(invoice)


@routes.get("/invoice/{id}", kind="page")
def invoice_page(req: Request) -> Response:
    invoice = req.store.get(req.args["id"], kind="invoice")
    if invoice is None or invoice["status"] == "draft":
        return Response.html(pages.message_page("Not found", "No such invoice."), 404)
    return Response.html(pages.invoice_page(invoice))


@routes.post("/invoice/{id}", kind="page")
def invoice_page_submit(req: Request) -> Response:
    invoice = req.store.get(req.args["id"], kind="invoice")
    if invoice is None or invoice["status"] != "open":
        return invoice_page(req)
    card = req.form().get("card", "4242424242424242")
    try:
        invoice_pay_card(req.store, invoice, card)
    except StripeError as exc:
        if exc.type != "card_error":
            raise
        return Response.html(pages.invoice_page(invoice, error=exc.message, card=card), 402)
    return Response.html(pages.invoice_page(invoice))


def _test_invoice(req: Request) -> dict[str, Any]:
    invoice = req.store.get(req.args["id"], kind="invoice")
    if invoice is None:
        raise resource_missing("invoice", req.args["id"])
    return invoice


@routes.post("/_test/invoices/{id}/pay", kind="test")
def invoice_pay_helper(req: Request) -> Response:
    """``{"fail": true}`` declines (card 4000 0000 0000 0002); ``{"card": ...}`` picks one."""
    invoice = _test_invoice(req)
    _require_open(invoice)
    body = req.json()
    card = str(body.get("card") or ("4000000000000002" if body.get("fail") else
                                    "4242424242424242"))
    try:
        charge = invoice_pay_card(req.store, invoice, card)
    except StripeError as exc:
        if exc.type != "card_error":
            raise
        result = exc.body()
        result.update(status="declined", invoice=public(invoice))
        return Response.json(result, 402)
    return Response.json({"status": "succeeded", "invoice": public(invoice),
                          "charge": charge["id"], "payment_intent": charge["payment_intent"]})


@routes.post("/_test/invoices/{id}/mark_overdue", kind="test")
def invoice_mark_overdue(req: Request) -> dict[str, Any]:
    invoice = _test_invoice(req)
    _require_open(invoice)
    now = req.store.now()
    previous = {"due_date": invoice["due_date"]}
    if invoice["due_date"] is None or invoice["due_date"] >= now:
        invoice["due_date"] = now - 86400
    req.store.emit("invoice.overdue", invoice, account=invoice["_account"], previous=previous)
    return public(invoice)
