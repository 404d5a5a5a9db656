import socket
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Organisation, User


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Transactional, like the real command: webhook processing is enqueued on commit.
@pytest.mark.django_db(transaction=True)
def test_demo_sets_up_a_society_and_running_it_twice_changes_nothing(settings):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{_free_port()}"  # parallel runs: own port
    out = StringIO()
    call_command("demo", "--no-serve", stdout=out)
    text = out.getvalue()
    assert "Blanket demo society is ready" in text
    assert "blanket-demo-2026" in text
    from licensing.models import Conflict, Share, Work, WorkIdentifier

    counts = (
        User.objects.count(),
        Organisation.objects.count(),
        Work.objects.count(),
        WorkIdentifier.objects.count(),
        Share.objects.count(),
    )
    assert Work.objects.filter(catalogue__owner__name="Northern Lights Press").count() == 60
    assert Work.objects.filter(media_type="audio").count() == 40
    conflict = Conflict.objects.get(status="open")  # the photo book's ISBN, claimed twice
    from licensing.models import Licence
    from royalties.services.ledger import ledger_trial_balance

    assert set(Licence.objects.values_list("status", flat=True)) == {"active"}
    assert Licence.objects.count() == 2
    assert ledger_trial_balance() == {"EUR": 0}
    assert {o.name for o in conflict.claimants.all()} == {
        "Northern Lights Press",
        "Fjord Photo Agency",
    }
    assert Organisation.objects.filter(kind="society").count() == 1
    assert Organisation.objects.filter(kind="rights_holder").count() >= 3
    assert Organisation.objects.filter(kind="licensee").count() >= 2
    assert User.objects.filter(is_staff=True, groups__name="approver").exists()
    from licensing.models import UsageDeclaration

    accepted = UsageDeclaration.objects.filter(status="accepted")
    assert sorted(accepted.values_list("licence__licensee__name", flat=True)) == [
        "Aleph AI Ltd",
        "Corvid Labs",
    ]
    assert UsageDeclaration.objects.count() == 2  # nothing rejected, nothing superseded
    for declaration in accepted:
        assert declaration.matched_quantity > 0
        # Only the unknown ISBNs, URL and DOI: the messy spellings of known works all match.
        assert declaration.unmatched_lines == 5
        assert declaration.reserved_quantity > 0  # every tenth press book is reserved
        assert (
            declaration.matched_quantity
            + declaration.unmatched_quantity
            + declaration.reserved_quantity
            == declaration.declared_quantity
        )
        assert f"Declaration {declaration.pk} " in text
    from royalties.models import Cycle, Payout, PayoutReconciliation

    # The cycle is paid through the local Stripe: two holders connected and paid, one held
    # (no payout account), reconciled clean and closed.
    cycle = Cycle.objects.get()
    assert cycle.status == "closed"
    assert sorted(Payout.objects.values_list("status", flat=True)) == ["held", "paid", "paid"]
    assert Payout.objects.get(status="held").holder.name == "Fjord Photo Agency"
    assert PayoutReconciliation.objects.get(cycle=cycle).clean
    assert "reconciliation: clean" in text
    again = StringIO()
    call_command("demo", "--no-serve", stdout=again)
    assert Payout.objects.count() == 3 and PayoutReconciliation.objects.count() == 1
    assert (
        User.objects.count(),
        Organisation.objects.count(),
        Work.objects.count(),
        WorkIdentifier.objects.count(),
        Share.objects.count(),
    ) == counts
    assert "'Backlist': succeeded, 0 works created, 60 unchanged" in again.getvalue()
    assert UsageDeclaration.objects.filter(status="accepted").count() == 2
    assert UsageDeclaration.objects.count() == 2


@pytest.mark.django_db
def test_demo_users_can_log_in_and_see_their_organisation(client, settings):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{_free_port()}"
    call_command("demo", "--no-serve", stdout=StringIO())
    assert client.login(username="editor@northernlights.demo", password="blanket-demo-2026")
    page = client.get("/").content.decode()
    assert "Northern Lights Press" in page
