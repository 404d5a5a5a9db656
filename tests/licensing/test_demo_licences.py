"""The demo's licence sales run through the local Stripe and leave active, paid licences."""

from __future__ import annotations

from accounts.models import OrganisationKind, Role
from accounts.services import membership_add
from licensing.demo_licences import demo_licences_seed
from licensing.models import Licence, LicenceStatus, PaymentStatus
from royalties.services.ledger import ledger_trial_balance
from tests.factories import OrganisationFactory, UserFactory


def test_demo_licensees_buy_by_card_and_by_invoice_and_a_rerun_buys_nothing(
    operator, stripe_control, django_capture_on_commit_callbacks
):
    licensees = {}
    for name in ("Aleph AI Ltd", "Corvid Labs"):
        organisation = OrganisationFactory(kind=OrganisationKind.LICENSEE, name=name)
        owner = UserFactory()
        membership_add(organisation=organisation, user=owner, role=Role.OWNER)
        licensees[name] = (organisation, owner)

    with django_capture_on_commit_callbacks(execute=True):  # as outside a test transaction
        sold = demo_licences_seed(
            staff=operator.user, licensees=licensees, stripe_control=stripe_control
        )
    for licence in sold:
        licence.refresh_from_db()

    assert [(lic.licensee.name, lic.status, lic.payment_method) for lic in sold] == [
        ("Aleph AI Ltd", LicenceStatus.ACTIVE, "checkout"),
        ("Corvid Labs", LicenceStatus.ACTIVE, "invoice"),
    ]
    # 2.5 % of 1,500,000.00 AI revenue = 37,500.00 beats the 25,000.00 Scale-up tier
    assert sold[0].amount_minor == 3_750_000
    assert sold[1].amount_minor == 400_000
    assert all(lic.payments.get().status == PaymentStatus.SUCCEEDED for lic in sold)
    assert all(total == 0 for total in ledger_trial_balance().values())

    with django_capture_on_commit_callbacks(execute=True):
        again = demo_licences_seed(
            staff=operator.user, licensees=licensees, stripe_control=stripe_control
        )
    assert [lic.pk for lic in again] == [lic.pk for lic in sold]
    assert Licence.objects.count() == 2


def test_demo_stripe_starts_where_the_settings_point(settings):
    import socket

    from licensing.demo_licences import demo_stripe_start

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{port}"
    server = demo_stripe_start(site_url="http://127.0.0.1:8000")
    try:
        assert server.url == f"http://127.0.0.1:{port}"
        assert server.control.webhooks_configure()["mode"] == "hold"
    finally:
        server.stop()
