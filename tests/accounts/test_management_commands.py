from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import Membership, User

pytestmark = pytest.mark.django_db


def _call(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_operators_script_an_organisation_a_key_and_a_member():
    code = _call(
        "create_organisation", "--kind", "licensee", "--name", "Aleph AI", "--country", "GB"
    )
    assert code == "LI-000001"
    raw_key = _call("create_api_key", "--org", code, "--name", "ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert client.get("/api/v1/me/").json()["organisation"]["code"] == code
    User.objects.create_user(email="ml@aleph.test", password="x" * 12)
    assert "admin" in _call(
        "add_member", "--org", code, "--email", "ML@aleph.test", "--role", "admin"
    )
    assert Membership.objects.get(user__email="ml@aleph.test").role == "admin"


def test_commands_fail_clearly_on_bad_input():
    with pytest.raises(CommandError, match="No organisation"):
        _call("create_api_key", "--org", "RH-404404")
    with pytest.raises(CommandError, match="ISNI"):
        _call("create_organisation", "--kind", "rights_holder", "--name", "X", "--isni", "123")
    code = _call("create_organisation", "--kind", "rights_holder", "--name", "X")
    with pytest.raises(CommandError, match="must sign up first"):
        _call("add_member", "--org", code, "--email", "nobody@x.test", "--role", "member")
