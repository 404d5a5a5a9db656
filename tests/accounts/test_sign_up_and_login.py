import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import AuditEvent, User

pytestmark = pytest.mark.django_db


def test_sign_up_creates_the_account_logs_in_and_asks_for_an_organisation(client):
    response = client.post(
        reverse("sign_up"),
        {"email": "Ada@Example.TEST", "password": "a-long-passphrase-1", "full_name": "Ada"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("organisation_create")
    user = User.objects.get()
    assert user.email == "ada@example.test"
    assert client.get(reverse("dashboard")).status_code == 200
    assert AuditEvent.objects.filter(action="user.sign_up", actor=user).count() == 1


def test_sign_up_refuses_an_email_already_registered_in_any_case(client):
    User.objects.create_user(email="ada@example.test", password="x" * 12)
    response = client.post(
        reverse("sign_up"), {"email": "ADA@example.test", "password": "a-long-passphrase-1"}
    )
    assert response.status_code == 200
    assert "exists already" in response.content.decode()
    assert User.objects.count() == 1


def test_sign_up_refuses_a_weak_password_with_the_reason(client):
    response = client.post(
        reverse("sign_up"), {"email": "b@example.test", "password": "1234567890"}
    )
    assert response.status_code == 200
    assert "entirely numeric" in response.content.decode()
    assert not User.objects.exists()


def test_login_is_by_email_and_case_insensitive(client):
    User.objects.create_user(email="ada@example.test", password="correct-horse-battery")
    response = client.post(
        reverse("login"), {"username": "ADA@example.test", "password": "correct-horse-battery"}
    )
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_login_with_a_wrong_password_is_refused(client):
    User.objects.create_user(email="ada@example.test", password="correct-horse-battery")
    response = client.post(reverse("login"), {"username": "ada@example.test", "password": "nope"})
    assert response.status_code == 200
    assert client.get(reverse("dashboard")).status_code == 302


def test_logout_ends_the_session(client):
    user = User.objects.create_user(email="ada@example.test", password="correct-horse-battery")
    client.force_login(user)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("login"))


def test_password_reset_emails_a_link_that_sets_a_new_password(client):
    User.objects.create_user(email="ada@example.test", password="correct-horse-battery")
    client.post(reverse("password_reset"), {"email": "ada@example.test"})
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/reset/\S+/", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "another-long-phrase-2", "new_password2": "another-long-phrase-2"},
    )
    assert response.status_code == 302
    assert client.login(username="ada@example.test", password="another-long-phrase-2")


def test_pages_need_a_login(client):
    for name in ("dashboard", "members", "api_keys", "organisation_create", "audit_log"):
        response = client.get(reverse(name))
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login"))
