from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Organisation, User


@pytest.mark.django_db
def test_demo_sets_up_a_society_and_running_it_twice_changes_nothing():
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
    assert {o.name for o in conflict.claimants.all()} == {
        "Northern Lights Press",
        "Fjord Photo Agency",
    }
    assert Organisation.objects.filter(kind="society").count() == 1
    assert Organisation.objects.filter(kind="rights_holder").count() >= 3
    assert Organisation.objects.filter(kind="licensee").count() >= 2
    assert User.objects.filter(is_staff=True, groups__name="approver").exists()
    again = StringIO()
    call_command("demo", "--no-serve", stdout=again)
    assert (
        User.objects.count(),
        Organisation.objects.count(),
        Work.objects.count(),
        WorkIdentifier.objects.count(),
        Share.objects.count(),
    ) == counts
    assert "'Backlist': succeeded, 0 works created, 60 unchanged" in again.getvalue()


@pytest.mark.django_db
def test_demo_users_can_log_in_and_see_their_organisation(client):
    call_command("demo", "--no-serve", stdout=StringIO())
    assert client.login(username="editor@northernlights.demo", password="blanket-demo-2026")
    page = client.get("/").content.decode()
    assert "Northern Lights Press" in page
