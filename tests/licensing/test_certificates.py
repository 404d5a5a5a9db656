"""Certificates: issued on activation, signed with Ed25519, tampering detected, expiry and
revocation reported."""

from __future__ import annotations

import copy
import datetime

import pytest

from licensing import certificates as signing
from licensing.models import Licence, LicenceStatus
from licensing.services import licences
from licensing.services.certificates import (
    certificate_document,
    certificate_revoke,
    certificate_verify,
)
from tests.licensing.factories import caller_of
from tests.licensing.payments_support import licence_for


@pytest.fixture
def document(licensee, operator, product):
    licence = licence_for(licensee, product)
    licences.payment_offline_record(
        caller=caller_of(operator),
        licence=licence,
        amount_minor=licence.amount_minor,
        reference="SEPA 1",
    )
    licence.refresh_from_db()
    return certificate_document(licence.certificate)


def test_issued_certificate_is_valid_and_says_what_is_licensed(document, licensee):
    payload = document["certificate"]
    assert payload["licensee"]["name"] == licensee.organisation.name
    assert payload["scope"]["uses"] == ["training", "fine_tuning"]
    assert payload["product"]["code"] == "ai-training"
    assert document["key_id"] == signing.public_key_document()["key_id"]
    assert certificate_verify(document=document)["status"] == "valid"


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["certificate"]["term"].update(ends_on="2099-12-31"),
        lambda d: d["certificate"]["scope"]["uses"].append("rag"),
        lambda d: d["certificate"]["licensee"].update(name="Someone Else AI"),
        lambda d: d.update(
            signature=("B" if d["signature"][0] == "A" else "A") + d["signature"][1:]
        ),
    ],
)
def test_tampering_is_detected(document, change):
    tampered = copy.deepcopy(document)
    change(tampered)
    result = certificate_verify(document=tampered)
    assert result["status"] == "invalid"
    assert "signature" in result["reason"]


def test_a_validly_signed_but_unknown_certificate_is_invalid(document):
    forged = copy.deepcopy(document)
    forged["certificate"]["serial"] = "BLK-999999-00000000"
    forged["signature"], _ = signing.sign(forged["certificate"])
    assert certificate_verify(document=forged)["status"] == "invalid"


def test_expired_and_revoked_are_reported(document):
    licence = Licence.objects.get(certificate__serial=document["certificate"]["serial"])
    Licence.objects.filter(pk=licence.pk).update(
        ends_on=datetime.date.today() - datetime.timedelta(days=1)
    )
    assert certificate_verify(document=document)["status"] == "expired"
    Licence.objects.filter(pk=licence.pk).update(ends_on=licence.ends_on)
    certificate_revoke(certificate=licence.certificate, reason="Licence terminated")
    result = certificate_verify(document=document)
    assert result["status"] == "revoked"
    assert "Licence terminated" in result["reason"]
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.ACTIVE


@pytest.mark.parametrize("junk", [None, [], {"certificate": "x"}, {"certificate": {}}])
def test_junk_is_invalid(db, junk):
    assert certificate_verify(document=junk)["status"] == "invalid"
