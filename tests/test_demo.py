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
    counts = (User.objects.count(), Organisation.objects.count())
    assert Organisation.objects.filter(kind="society").count() == 1
    assert Organisation.objects.filter(kind="rights_holder").count() >= 3
    assert Organisation.objects.filter(kind="licensee").count() >= 2
    assert User.objects.filter(is_staff=True, groups__name="approver").exists()
    call_command("demo", "--no-serve", stdout=StringIO())
    assert (User.objects.count(), Organisation.objects.count()) == counts


@pytest.mark.django_db
def test_demo_users_can_log_in_and_see_their_organisation(client):
    call_command("demo", "--no-serve", stdout=StringIO())
    assert client.login(username="editor@northernlights.demo", password="blanket-demo-2026")
    page = client.get("/").content.decode()
    assert "Northern Lights Press" in page
