"""Customers: create, retrieve, update, delete, list.

Mirrors https://docs.stripe.com/api/customers for the fields Blanket sets (email, name,
description, phone, address, metadata). ``invoice_prefix`` and ``next_invoice_sequence`` number
the customer's invoices (``PREFIX-0001``) as Stripe does by default. A deleted customer reads
back as ``{"id", "object": "customer", "deleted": true}``.

Simplified: no payment methods, sources, tax ids, cash balance or search.
"""

from __future__ import annotations

from typing import Any

from stripe_local.router import Request, RouteTable
from stripe_local.state import random_token
from stripe_local.wire import Params, metadata_apply, paginate

routes = RouteTable("api")

_FIELDS = ("email", "name", "description", "phone")
_ADDRESS = ("city", "country", "line1", "line2", "postal_code", "state")


def _address(params: Params) -> dict[str, Any] | None:
    address = params.obj("address")
    if address is None:
        return None
    address.only(*_ADDRESS)
    return {k: address.str(k) for k in _ADDRESS}


@routes.post("/v1/customers")
def customer_create(req: Request) -> dict[str, Any]:
    p = req.params.only(*_FIELDS, "address", "metadata", "preferred_locales")
    values = {k: p.str(k) for k in _FIELDS}
    address = _address(p)
    metadata = metadata_apply({}, p.metadata())
    locales = p.strings("preferred_locales")
    req.begin()
    customer = {
        "id": req.store.new_id("cus"),
        "object": "customer",
        "address": address,
        "balance": 0,
        "created": req.store.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": values["description"],
        "discount": None,
        "email": values["email"],
        "invoice_prefix": random_token(8).upper(),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                             "footer": None, "rendering_options": None},
        "livemode": False,
        "metadata": metadata,
        "name": values["name"],
        "next_invoice_sequence": 1,
        "phone": values["phone"],
        "preferred_locales": locales,
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    req.store.add(customer, account=req.account)
    req.store.emit("customer.created", customer, account=req.account)
    return req.render(customer)


def _find_customer(req: Request) -> dict[str, Any] | None:
    cid = req.args["id"]
    if cid in req.store.deleted and cid.startswith("cus_"):
        return None
    return req.find("customer", cid)


@routes.get("/v1/customers/{id}")
def customer_retrieve(req: Request) -> dict[str, Any]:
    customer = _find_customer(req)
    if customer is None:
        return {"id": req.args["id"], "object": "customer", "deleted": True}
    return req.render(customer)


@routes.post("/v1/customers/{id}")
def customer_update(req: Request) -> dict[str, Any]:
    customer = _find_customer(req) or req.find("customer", req.args["id"])
    p = req.params.only(*_FIELDS, "address", "metadata", "preferred_locales")
    changes: dict[str, Any] = {k: p.str(k) for k in _FIELDS if p.has(k)}
    if p.has("address"):
        changes["address"] = _address(p)
    if p.has("metadata"):
        changes["metadata"] = metadata_apply(customer["metadata"], p.metadata())
    if p.has("preferred_locales"):
        changes["preferred_locales"] = p.strings("preferred_locales")
    req.begin()
    previous = {k: customer[k] for k in changes if customer[k] != changes[k]}
    customer.update(changes)
    if previous:
        req.store.emit("customer.updated", customer, account=req.account, previous=previous)
    return req.render(customer)


@routes.delete("/v1/customers/{id}")
def customer_delete(req: Request) -> dict[str, Any]:
    customer = req.find("customer", req.args["id"])
    req.begin()
    req.store.remove(customer["id"])
    req.store.emit("customer.deleted", customer, account=req.account)
    return {"id": customer["id"], "object": "customer", "deleted": True}


@routes.get("/v1/customers")
def customer_list(req: Request) -> dict[str, Any]:
    email = req.params.str("email")
    items = req.store.all("customer", account=req.account,
                          where=lambda c: email is None or c["email"] == email)
    return paginate(items, req.params, "/v1/customers", req.render)
