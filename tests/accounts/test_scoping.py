"""The outsider persona gets 404 on every object endpoint and page, for every method."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Invitation, Membership
from accounts.scoping import caller_for_user
from accounts.services import api_key_create, invitation_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(rights_holder):
    """One object of every kind, owned by the rights holder."""
    api_key, _ = api_key_create(organisation=rights_holder.organisation, name="k")
    invitation = invitation_create(
        caller=caller_for_user(rights_holder.user, rights_holder.organisation),
        email="new@example.test",
    )
    return {
        "organisation": rights_holder.organisation,
        "membership": Membership.objects.get(organisation=rights_holder.organisation),
        "invitation": invitation,
        "api_key": api_key,
        "audit_event": AuditEvent.objects.filter(organisation=rights_holder.organisation).first(),
    }


def _endpoints(owned):
    return [
        ("get", f"/api/v1/organisations/{owned['organisation'].code}/"),
        ("get", f"/api/v1/memberships/{owned['membership'].pk}/"),
        ("delete", f"/api/v1/memberships/{owned['membership'].pk}/"),
        ("get", f"/api/v1/invitations/{owned['invitation'].pk}/"),
        ("delete", f"/api/v1/invitations/{owned['invitation'].pk}/"),
        ("get", f"/api/v1/api-keys/{owned['api_key'].pk}/"),
        ("delete", f"/api/v1/api-keys/{owned['api_key'].pk}/"),
        ("get", f"/api/v1/audit-events/{owned['audit_event'].pk}/"),
    ]


def test_outsider_gets_404_on_every_object_endpoint(owned, outsider):
    client = outsider.client()
    for method, url in _endpoints(owned):
        response = getattr(client, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json()["error"]["code"] == "not_found"
    # and nothing changed
    assert Membership.objects.filter(pk=owned["membership"].pk).exists()
    owned["api_key"].refresh_from_db()
    assert owned["api_key"].revoked_at is None
    assert Invitation.objects.get(pk=owned["invitation"].pk).revoked_at is None


def test_outsider_api_key_gets_404_on_every_object_endpoint(owned, outsider, api_client_for):
    client = api_client_for(outsider.organisation)
    for method, url in _endpoints(owned):
        assert getattr(client, method)(url).status_code == 404, (method, url)


def test_outsider_lists_contain_only_their_own_objects(owned, outsider):
    client = outsider.client()
    for url in (
        "/api/v1/organisations/",
        "/api/v1/memberships/",
        "/api/v1/invitations/",
        "/api/v1/api-keys/",
        "/api/v1/audit-events/",
    ):
        results = client.get(url).json()["results"]
        assert all(
            owned["organisation"].code not in (r.get("organisation"), r.get("code"))
            for r in results
        ), url


def test_outsider_gets_404_on_the_pages_that_act_on_objects(owned, outsider):
    client = outsider.client()
    assert client.post(reverse("api_key_revoke", args=[owned["api_key"].pk])).status_code == 404
    assert (
        client.post(reverse("invitation_revoke", args=[owned["invitation"].pk])).status_code == 404
    )
    owned["api_key"].refresh_from_db()
    assert owned["api_key"].revoked_at is None


def test_staff_see_every_organisations_objects(owned, operator):
    client = operator.client()
    for method, url in _endpoints(owned):
        if method == "get":
            assert client.get(url).status_code == 200, url


def test_anonymous_callers_get_401_not_data(owned, client):
    response = client.get("/api/v1/api-keys/")
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_a_member_of_two_organisations_sees_only_the_one_they_act_for(rights_holder, co_holder):
    from accounts.models import Role
    from accounts.services import membership_add

    membership_add(organisation=co_holder.organisation, user=rights_holder.user, role=Role.MEMBER)
    client = rights_holder.client()
    me = client.get("/api/v1/me/").json()
    assert me["organisation"]["code"] == rights_holder.organisation.code
    assert client.get(f"/api/v1/organisations/{co_holder.organisation.code}/").status_code == 404
    client.post(reverse("organisation_switch"), {"organisation": co_holder.organisation.code})
    assert client.get("/api/v1/me/").json()["organisation"]["code"] == co_holder.organisation.code
    assert client.get(f"/api/v1/organisations/{co_holder.organisation.code}/").status_code == 200


def test_switching_to_an_organisation_you_do_not_belong_to_is_refused(rights_holder, outsider):
    client = rights_holder.client()
    client.post(reverse("organisation_switch"), {"organisation": outsider.organisation.code})
    assert (
        client.get("/api/v1/me/").json()["organisation"]["code"] == rights_holder.organisation.code
    )
