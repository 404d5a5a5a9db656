import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiKey, AuditEvent
from accounts.services import api_key_create

pytestmark = pytest.mark.django_db


def _me(client):
    return client.get("/api/v1/me/")


def test_a_valid_key_authenticates_as_its_organisation(rights_holder, api_client_for):
    response = _me(api_client_for(rights_holder.organisation))
    assert response.status_code == 200
    body = response.json()
    assert body["organisation"]["code"] == rights_holder.organisation.code
    assert body["email"] is None and body["api_key"].startswith("bk_")


def test_the_key_is_shown_once_and_stored_only_as_a_hash(rights_holder):
    api_key, raw_key = api_key_create(organisation=rights_holder.organisation, name="ingest")
    stored = ApiKey.objects.filter(pk=api_key.pk).values()[0]
    assert raw_key not in {str(v) for v in stored.values()}
    assert raw_key.startswith(api_key.prefix + ".")
    listed = rights_holder.client().get(f"/api/v1/api-keys/{api_key.pk}/").json()
    assert "key" not in listed and listed["prefix"] == api_key.prefix


def test_using_a_key_records_its_last_use(rights_holder):
    api_key, raw_key = api_key_create(organisation=rights_holder.organisation, name="ingest")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert client.get("/api/v1/me/").status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_a_revoked_key_is_refused_with_the_error_body(rights_holder):
    api_key, raw_key = api_key_create(organisation=rights_holder.organisation, name="ingest")
    owner = rights_holder.client()
    assert owner.delete(f"/api/v1/api-keys/{api_key.pk}/").status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    response = _me(client)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert "revoked" in response.json()["error"]["message"]
    assert AuditEvent.objects.filter(action="api_key.revoke", object_id=str(api_key.pk)).exists()


@pytest.mark.parametrize(
    "header",
    ["Api-Key bk_00000000.not-a-real-key", "Api-Key ", "Api-Key a b", "Api-Key " + "x" * 300],
)
def test_malformed_or_unknown_keys_are_refused(header, db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert _me(client).status_code == 401


def test_a_key_of_another_organisation_sees_none_of_this_ones_objects(
    rights_holder, outsider, api_client_for
):
    own_key, _ = api_key_create(organisation=rights_holder.organisation, name="mine")
    client = api_client_for(outsider.organisation)
    assert client.get(f"/api/v1/api-keys/{own_key.pk}/").status_code == 404
    assert (
        client.get(f"/api/v1/organisations/{rights_holder.organisation.code}/").status_code == 404
    )
    listed = client.get("/api/v1/api-keys/").json()["results"]
    assert {k["organisation"] for k in listed} == {outsider.organisation.code}


def test_a_key_cannot_create_or_revoke_keys(rights_holder, api_client_for):
    client = api_client_for(rights_holder.organisation)
    response = client.post("/api/v1/api-keys/", {"name": "escalate"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    other, _ = api_key_create(organisation=rights_holder.organisation, name="other")
    assert client.delete(f"/api/v1/api-keys/{other.pk}/").status_code == 403
    assert ApiKey.objects.get(pk=other.pk).revoked_at is None


def test_owner_creates_a_key_over_the_api_and_gets_it_once(rights_holder):
    response = rights_holder.client().post("/api/v1/api-keys/", {"name": "ingest"}, format="json")
    assert response.status_code == 201
    raw_key = response.json()["key"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert _me(client).json()["organisation"]["code"] == rights_holder.organisation.code


def test_a_viewer_cannot_create_keys(rights_holder, db):
    from accounts.models import Role, User
    from accounts.services import membership_add

    viewer = User.objects.create_user(email="viewer@example.test", password="x" * 12)
    membership_add(organisation=rights_holder.organisation, user=viewer, role=Role.VIEWER)
    client = APIClient()
    client.force_login(viewer)
    assert client.post("/api/v1/api-keys/", {"name": "k"}, format="json").status_code == 403


def test_api_keys_page_shows_a_new_key_once_and_revokes(rights_holder):
    client = rights_holder.client()
    response = client.post(reverse("api_keys"), {"name": "pipeline"})
    page = response.content.decode()
    api_key = ApiKey.objects.get(name="pipeline")
    assert api_key.prefix in page and "will not be shown again" in page
    assert "will not be shown again" not in client.get(reverse("api_keys")).content.decode()
    client.post(reverse("api_key_revoke", args=[api_key.pk]))
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
