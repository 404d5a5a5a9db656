"""The EU AI Act training-content summary: generated from the licensee's ACCEPTED declarations
only (a draft, rejected or superseded declaration changes nothing), every figure equal to a
direct query, the licensee's own text validated field by field, drafts private to the licensee
(anyone else: 404), publishing makes it public and final, and a re-publish is a new version."""

from __future__ import annotations

import pytest
from django.db.models import Count, Sum
from rest_framework.test import APIClient

from accounts.models import OrganisationKind
from licensing.models import (
    DeclarationStatus,
    DeclarationWorkUsage,
    Reservation,
    TrainingSummary,
    UsageDeclaration,
)
from licensing.services.summaries import training_summary_generate
from tests.conftest import _persona
from tests.licensing.declarations_support import (
    ISBN_A,
    ISBN_B,
    ISBN_UNKNOWN,
    active_licence,
    csv_file,
    declare,
    repertoire,
)
from tests.licensing.factories import caller_of, catalogue_for, work_in

pytestmark = pytest.mark.django_db

RESERVED_ISBN = "9780140449136"  # the reserved work of `repertoire`
IMAGE_SHA = "cd" * 32
API = "/api/v1/training-summaries/"


@pytest.fixture
def works(rights_holder):
    works = repertoire(rights_holder)
    pictures = catalogue_for(rights_holder, "Pictures", media_type="image")
    works["image"] = work_in(pictures, rights_holder, "IMG", sha256=IMAGE_SHA)
    Reservation.objects.create(
        kind="domain", value="reserved.example", organisation=rights_holder.organisation
    )
    return works


@pytest.fixture
def licence(licensee, works):
    return active_licence(licensee)


@pytest.fixture
def accepted(licensee, licence):
    """Q3 of model aleph 1: text, an image, an unknown ISBN and a reserved work."""
    rows = [
        ("isbn", ISBN_A, 600),
        ("isbn", ISBN_B, 300),
        ("sha256", IMAGE_SHA, 100),
        ("isbn", ISBN_UNKNOWN, 50),
        ("isbn", RESERVED_ISBN, 7),
    ]
    declaration = declare(licensee, licence, csv_file(rows), period="2026-Q3")
    assert declaration.status == DeclarationStatus.ACCEPTED
    return declaration


def _generate(licensee, model="aleph", version="1"):
    return training_summary_generate(
        caller=caller_of(licensee), model_name=model, model_version=version
    )


def _figures(summary) -> dict:
    """The generated data without the moments it was generated at."""
    data = dict(summary.data)
    data.pop("generated_at")
    data["processing"]["reservations"]["registered_at_society"].pop("as_of")
    return data


def _accepted_query(licensee, model="aleph", version="1"):
    return UsageDeclaration.objects.filter(
        licence__licensee=licensee.organisation,
        model_name=model,
        model_version=version,
        status=DeclarationStatus.ACCEPTED,
    )


def _assert_equals_database(summary, licensee):
    """Every figure of the summary against a direct query of the accepted declarations."""
    declarations = _accepted_query(licensee)
    licensed = summary.data["data_sources"]["licensed"]
    totals = declarations.aggregate(
        lines=Sum("lines"),
        declared=Sum("declared_quantity"),
        matched=Sum("matched_quantity"),
        unmatched=Sum("unmatched_quantity"),
        reserved=Sum("reserved_quantity"),
        matched_lines=Sum("matched_lines"),
        unmatched_lines=Sum("unmatched_lines"),
        reserved_lines=Sum("reserved_lines"),
    )
    assert licensed["lines"] == {
        "lines": totals["lines"],
        "matched_lines": totals["matched_lines"],
        "unmatched_lines": totals["unmatched_lines"],
        "reserved_lines": totals["reserved_lines"],
    }
    (volume,) = licensed["volumes"]
    assert volume["declared_quantity"] == totals["declared"]
    assert volume["matched_quantity"] == totals["matched"]
    assert volume["unmatched_quantity"] == totals["unmatched"]
    assert volume["reserved_quantity"] == totals["reserved"]
    assert {d["id"] for d in licensed["declarations"]} == set(
        declarations.values_list("pk", flat=True)
    )
    usage = DeclarationWorkUsage.objects.filter(declaration__in=declarations, reserved=False)
    by_media = {
        row["work__media_type"]: (row["q"], row["n"])
        for row in usage.values("work__media_type").annotate(
            q=Sum("quantity"), n=Count("work", distinct=True)
        )
    }
    assert {m["media_type"]: (m["quantity"], m["works"]) for m in licensed["by_media_type"]} == (
        by_media
    )
    assert licensed["works_matched"] == usage.values("work").distinct().count()
    reservations = summary.data["processing"]["reservations"]
    assert reservations["declared_reserved_lines"] == totals["reserved_lines"]
    assert reservations["reserved_works_declared"] == (
        DeclarationWorkUsage.objects.filter(declaration__in=declarations, reserved=True)
        .values("work")
        .distinct()
        .count()
    )
    registered = reservations["registered_at_society"]["reservations"]
    assert registered["total"] == Reservation.objects.filter(withdrawn_at__isnull=True).count()


def test_the_summary_states_the_accepted_declarations_figures(licensee, accepted, works):
    summary = _generate(licensee)
    assert summary.status == "draft" and summary.version == 1
    _assert_equals_database(summary, licensee)
    licensed = summary.data["data_sources"]["licensed"]
    # Exactly the hand-computed figures too.
    assert licensed["lines"] == {
        "lines": 5,
        "matched_lines": 3,
        "unmatched_lines": 1,
        "reserved_lines": 1,
    }
    assert licensed["volumes"][0]["unit"] == "tokens"
    assert licensed["volumes"][0]["declared_quantity"] == 1_057
    assert [
        (m["media_type"], m["quantity"], m["share_percent"]) for m in licensed["by_media_type"]
    ] == [
        ("text", 900, "90.00"),
        ("image", 100, "10.00"),
    ]
    assert licensed["periods"]["periods"] == ["2026-Q3"]
    assert licensed["periods"]["first_day"] == "2026-07-01"
    general = summary.data["general"]
    assert general["provider"]["code"] == licensee.organisation.code
    assert general["model"] == {"name": "aleph", "version": "1"}
    assert general["modalities"] == ["text", "image"]
    assert general["size_by_modality"][0]["range"] == "Less than 1 billion tokens"
    reservations = summary.data["processing"]["reservations"]
    assert reservations["honoured"] is False  # one declared line named the reserved work
    assert reservations["licence_excludes_reserved"] is True
    assert "1 declared line(s) named reserved works" in reservations["statement"]
    assert reservations["declared_reserved_lines"] == 1
    assert reservations["reserved_works_declared"] == 1
    assert reservations["registered_at_society"]["reservations"]["domain"] == 1
    assert reservations["registered_at_society"]["reserved_works"] == 1


def test_draft_rejected_and_superseded_declarations_change_nothing(
    licensee, licence, accepted, works
):
    before = _figures(_generate(licensee))
    # A rejected and a draft declaration of the same model, with usage rows of their own.
    for status in (DeclarationStatus.REJECTED, DeclarationStatus.DRAFT):
        other = UsageDeclaration.objects.create(
            licence=licence,
            period="2026-Q4",
            period_start="2026-10-01",
            period_end="2026-12-31",
            model_name="aleph",
            model_version="1",
            unit="tokens",
            status=status,
            deadline="2027-01-31",
            lines=1,
            declared_quantity=99_999,
            matched_lines=1,
            matched_quantity=99_999,
        )
        DeclarationWorkUsage.objects.create(
            declaration=other, work=works["a"], quantity=99_999, lines=1
        )
    # And accepted declarations of other models or versions.
    declare(licensee, licence, csv_file([("isbn", ISBN_A, 5_000)]), model="aleph", version="2")
    declare(licensee, licence, csv_file([("isbn", ISBN_A, 5_000)]), model="beth")
    after = _figures(_generate(licensee))
    assert after == before
    assert TrainingSummary.objects.filter(model_name="aleph", model_version="1").count() == 1

    # A correction supersedes the Q3 declaration: only the correction counts from now on.
    correction = declare(licensee, licence, csv_file([("isbn", ISBN_B, 40)]), period="2026-Q3")
    accepted.refresh_from_db()
    assert accepted.status == DeclarationStatus.SUPERSEDED
    summary = _generate(licensee)
    licensed = summary.data["data_sources"]["licensed"]
    assert [d["id"] for d in licensed["declarations"]] == [correction.pk]
    assert licensed["volumes"][0]["declared_quantity"] == 40
    assert [(m["media_type"], m["quantity"]) for m in licensed["by_media_type"]] == [("text", 40)]
    _assert_equals_database(summary, licensee)


def test_generating_needs_an_accepted_declaration_and_a_licensee(licensee, rights_holder, licence):
    response = licensee.client().post(
        API, {"model_name": "aleph", "model_version": "1"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_accepted_declarations"
    response = rights_holder.client().post(
        API, {"model_name": "aleph", "model_version": "1"}, format="json"
    )
    assert response.status_code == 403
    response = licensee.client().post(API, {"model_name": "aleph"}, format="json")
    assert response.status_code == 400
    assert "model_version" in response.json()["error"]["details"]


def test_api_generate_edit_publish_and_public_read(licensee, accepted):
    client = licensee.client()
    response = client.post(API, {"model_name": "aleph", "model_version": "1"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    pk = body["id"]
    assert body["status"] == "draft" and body["version"] == 1
    assert body["document"]["data_sources"]["licensed"]["volumes"][0]["declared_quantity"] == 1_057
    # Regenerating the open draft: 200, same row, text kept.
    client.patch(f"{API}{pk}/", {"other_sources": "Public web crawl (CommonCrawl)."}, format="json")
    again = client.post(API, {"model_name": "aleph", "model_version": "1"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == pk
    assert again.json()["other_sources"] == "Public web crawl (CommonCrawl)."

    response = client.patch(
        f"{API}{pk}/",
        {
            "contact": "ai-office@aleph.example",
            "placed_on_market": "2026-09-01",
            "model_description": "A text and image model.",
            "processing_narrative": "We honoured robots.txt and TDMRep.",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    document = response.json()["document"]
    assert document["general"]["provider"]["contact"] == "ai-office@aleph.example"
    assert document["general"]["model"]["placed_on_market"] == "2026-09-01"
    assert document["processing"]["narrative"] == "We honoured robots.txt and TDMRep."
    assert document["data_sources"]["other_sources"] == "Public web crawl (CommonCrawl)."

    anonymous = APIClient()
    assert anonymous.get(f"{API}{pk}/").status_code == 404  # a draft is not public
    assert anonymous.get(f"/summaries/{pk}/").status_code == 404

    published = client.post(f"{API}{pk}/publish/")
    assert published.status_code == 200
    assert published.json()["status"] == "published" and published.json()["published_at"]

    public = anonymous.get(f"{API}{pk}/")
    assert public.status_code == 200
    assert public.json()["document"]["processing"]["narrative"] == (
        "We honoured robots.txt and TDMRep."
    )
    page = anonymous.get(f"/summaries/{pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "We honoured robots.txt and TDMRep." in html
    assert 'data-testid="declared-tokens">1057<' in html
    assert anonymous.get(f"/summaries/{pk}/summary.json").json()["version"] == 1


def test_a_published_summary_is_final_and_a_republish_is_a_new_version(licensee, accepted):
    client = licensee.client()
    pk = client.post(API, {"model_name": "aleph", "model_version": "1"}, format="json").json()["id"]
    client.patch(f"{API}{pk}/", {"model_description": "First words."}, format="json")
    client.post(f"{API}{pk}/publish/")
    frozen = TrainingSummary.objects.get(pk=pk)

    response = client.patch(f"{API}{pk}/", {"model_description": "Changed."}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "summary_published"
    assert client.post(f"{API}{pk}/publish/").status_code == 409
    page = client.post(f"/training-summaries/{pk}/", {"model_description": "Changed."})
    assert page.status_code == 400

    second = client.post(API, {"model_name": "aleph", "model_version": "1"}, format="json")
    assert second.status_code == 201
    v2 = second.json()
    assert v2["id"] != pk and v2["version"] == 2 and v2["status"] == "draft"
    assert v2["model_description"] == "First words."  # starts from the published text
    client.patch(f"{API}{v2['id']}/", {"model_description": "Second words."}, format="json")
    client.post(f"{API}{v2['id']}/publish/")

    unchanged = TrainingSummary.objects.get(pk=pk)
    assert unchanged.model_description == "First words."
    assert unchanged.data == frozen.data and unchanged.published_at == frozen.published_at
    assert unchanged.updated_at == frozen.updated_at
    old_page = APIClient().get(f"/summaries/{pk}/").content.decode()
    assert "A newer version exists" in old_page


def test_edit_errors_name_the_field_and_the_problem(licensee, accepted):
    client = licensee.client()
    pk = client.post(API, {"model_name": "aleph", "model_version": "1"}, format="json").json()["id"]
    cases = [
        ({"contact": "call us"}, "contact", "An email address or an https:// URL."),
        ({"other_sources": "x" * 20_001}, "other_sources", "At most 20,000 characters"),
        ({"model_description": "y" * 5_001}, "model_description", "At most 5,000 characters"),
        ({"placed_on_market": "2026-13-01"}, "placed_on_market", "A date as YYYY-MM-DD."),
        ({"processing_narrative": "bad\x00byte"}, "processing_narrative", "control characters"),
        ({"data": {"general": {}}}, "data", "Cannot be edited"),
        ({"status": "published"}, "status", "Cannot be edited"),
    ]
    for body, field, message in cases:
        response = client.patch(f"{API}{pk}/", body, format="json")
        assert response.status_code == 400, (field, response.content)
        details = response.json()["error"]["details"]
        assert list(details) == [field], details
        assert message in details[field][0]
    # Several problems at once: each field reported.
    response = client.patch(
        f"{API}{pk}/", {"contact": "nope", "placed_on_market": "soon"}, format="json"
    )
    assert set(response.json()["error"]["details"]) == {"contact", "placed_on_market"}
    assert TrainingSummary.objects.get(pk=pk).contact == ""  # nothing half-written
    # The page shows the same message beside the field.
    page = client.post(f"/training-summaries/{pk}/", {"contact": "call us", "action": "save"})
    assert page.status_code == 400
    assert "An email address or an https:// URL." in page.content.decode()


def test_drafts_are_hidden_from_other_organisations(
    licensee, accepted, outsider, rights_holder, operator
):
    other_licensee = _persona(OrganisationKind.LICENSEE, name="Beth Models Inc")
    pk = _generate(licensee).pk
    for persona in (outsider, rights_holder, other_licensee):
        client = persona.client()
        assert client.get(f"{API}{pk}/").status_code == 404
        assert (
            client.patch(f"{API}{pk}/", {"contact": "a@b.example"}, format="json").status_code
            == 404
        )
        assert client.post(f"{API}{pk}/publish/").status_code == 404
        assert client.get(f"/training-summaries/{pk}/").status_code == 404
        assert client.post(f"/training-summaries/{pk}/publish/").status_code == 404
        assert client.get(f"/summaries/{pk}/").status_code == 404
        assert client.get(f"/summaries/{pk}/summary.json").status_code == 404
        assert pk not in [s["id"] for s in client.get(API).json()["results"]]
    assert TrainingSummary.objects.get(pk=pk).status == "draft"
    # Staff see the draft; the licensee lists it.
    assert operator.client().get(f"{API}{pk}/").status_code == 200
    assert [s["id"] for s in licensee.client().get(API).json()["results"]] == [pk]
    # Once published, everyone may read it, nobody else may change it.
    licensee.client().post(f"{API}{pk}/publish/")
    assert outsider.client().get(f"{API}{pk}/").status_code == 200
    assert (
        outsider.client()
        .patch(f"{API}{pk}/", {"contact": "a@b.example"}, format="json")
        .status_code
        == 404
    )


def test_licensee_pages_generate_edit_preview_publish(licensee, accepted, licence):
    client = licensee.client()
    listing = client.get("/training-summaries/")
    assert listing.status_code == 200
    assert "aleph 1 (1 accepted)" in listing.content.decode()
    assert (
        "training-summaries-link"
        in client.get(f"/licences/{licence.pk}/declarations/").content.decode()
    )
    response = client.post("/training-summaries/", {"model": '["aleph", "1"]'})
    assert response.status_code == 302
    summary = TrainingSummary.objects.get()
    assert response["Location"] == f"/training-summaries/{summary.pk}/"
    edit = client.get(response["Location"])
    assert edit.status_code == 200 and "Publish version 1" in edit.content.decode()
    saved = client.post(
        f"/training-summaries/{summary.pk}/",
        {"action": "save", "processing_narrative": "Opt-outs honoured.", "contact": ""},
    )
    assert saved.status_code == 302
    preview = client.get(f"/summaries/{summary.pk}/").content.decode()
    assert "draft preview: not public" in preview and "Opt-outs honoured." in preview
    published = client.post(f"/training-summaries/{summary.pk}/publish/")
    assert published.status_code == 302 and published["Location"] == f"/summaries/{summary.pk}/"
    summary.refresh_from_db()
    assert summary.is_published
    assert "Opt-outs honoured." in APIClient().get(f"/summaries/{summary.pk}/").content.decode()


def test_the_database_refuses_to_change_a_published_summary(licensee, accepted):
    from django.db import DatabaseError, connection, transaction

    summary = _generate(licensee)
    TrainingSummary.objects.filter(pk=summary.pk).update(model_description="Drafts may change.")
    licensee.client().post(f"{API}{summary.pk}/publish/")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE licensing_trainingsummary SET model_description = %s WHERE id = %s",
            ["Rewritten history.", summary.pk],
        )
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM licensing_trainingsummary WHERE id = %s", [summary.pk])
    assert TrainingSummary.objects.get(pk=summary.pk).model_description == "Drafts may change."
