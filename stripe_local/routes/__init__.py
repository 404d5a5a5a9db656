"""One module per Stripe resource; ``all_routes`` is the server's routing table."""

from __future__ import annotations

from stripe_local.router import Route
from stripe_local.routes import (
    accounts,
    balance,
    checkout,
    customers,
    events,
    invoices,
    payments,
    payouts,
    refunds,
    testing,
    transfers,
)
from stripe_local.state import Store

MODULES = (customers, checkout, payments, invoices, refunds, accounts, transfers, payouts,
           balance, events, testing)


def all_routes() -> list[Route]:
    return [route for module in MODULES for route in module.routes.routes]


def register_includables(store: Store) -> None:
    for module in (checkout, payments, invoices):
        module.register_includables(store)
