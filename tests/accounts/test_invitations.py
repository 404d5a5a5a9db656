import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Membership, Role, User

pytestmark = pytest.mark.django_db


def _invite(persona, email="new@example.test", role=Role.MEMBER):
    return persona.client().post(reverse("members"), {"email": email, "role": role})


def _link_path(message) -> str:
    return re.search(r"http://[^/]+(/invitations/accept/\S+/)", message.body).group(1)


def test_an_invitation_is_emailed_and_accepting_it_adds_the_member(
    rights_holder, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(rights_holder)
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@example.test"]
    assert rights_holder.organisation.name in mail.outbox[0].subject
    assert Invitation.objects.get().sent_at is not None

    path = _link_path(mail.outbox[0])
    assert "Sign up" in client.get(path).content.decode()
    client.post(
        reverse("sign_up") + f"?next={path}",
        {"email": "new@example.test", "password": "a-long-passphrase-1"},
    )
    response = client.post(path)
    assert response.status_code == 302
    user = User.objects.get(email="new@example.test")
    membership = Membership.objects.get(user=user)
    assert membership.organisation == rights_holder.organisation
    assert membership.role == Role.MEMBER
    assert client.post(path).status_code == 400  # used already


def test_an_invitation_cannot_be_accepted_by_another_account(
    rights_holder, outsider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(rights_holder)
    client = outsider.client()
    client.post(_link_path(mail.outbox[0]))
    assert not Membership.objects.filter(
        user=outsider.user, organisation=rights_holder.organisation
    ).exists()


def test_expired_revoked_and_forged_invitations_are_refused(
    rights_holder, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(rights_holder)
    path = _link_path(mail.outbox[0])
    invitation = Invitation.objects.get()
    invited = User.objects.create_user(email="new@example.test", password="x" * 12)
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(invited)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(1))
    assert "expired" in client.get(path).content.decode()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() + timedelta(1))
    assert client.get(path[:-3] + "xx/").status_code == 400
    rights_holder.client().post(reverse("invitation_revoke", args=[invitation.pk]))
    client.post(path)
    assert not Membership.objects.filter(user=invited).exists()


def test_only_owners_and_admins_may_invite(rights_holder):
    viewer = User.objects.create_user(email="viewer@example.test", password="x" * 12)
    from accounts.services import membership_add

    membership_add(organisation=rights_holder.organisation, user=viewer, role=Role.VIEWER)
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(viewer)
    response = client.post("/api/v1/invitations/", {"email": "x@example.test"}, format="json")
    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_inviting_an_existing_member_says_so(rights_holder):
    response = rights_holder.client().post(
        "/api/v1/invitations/", {"email": rights_holder.user.email}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "already_member"
