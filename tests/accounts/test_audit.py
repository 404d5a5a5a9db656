import pytest
from django.db import DatabaseError, connection, transaction

# The raw statements run inside savepoints of the test's transaction: the refused statement
# rolls back to its savepoint and the test goes on, on SQLite and on PostgreSQL alike.
from accounts.models import AuditEvent, AuditLogImmutableError

pytestmark = pytest.mark.django_db


def test_services_write_audit_rows_with_the_request_id(rights_holder):
    client = rights_holder.client()
    response = client.post(
        "/api/v1/api-keys/", {"name": "ingest"}, format="json", HTTP_X_REQUEST_ID="req-abc-123"
    )
    assert response["X-Request-ID"] == "req-abc-123"
    event = AuditEvent.objects.get(action="api_key.create")
    assert event.actor == rights_holder.user
    assert event.organisation == rights_holder.organisation
    assert event.request_id == "req-abc-123"
    assert event.object_id == str(response.json()["id"])


def test_a_garbage_request_id_is_replaced_not_trusted(rights_holder):
    response = rights_holder.client().get("/api/v1/me/", HTTP_X_REQUEST_ID="<script>")
    assert response["X-Request-ID"] != "<script>" and len(response["X-Request-ID"]) == 32


def test_audit_rows_cannot_be_updated_or_deleted_through_the_orm(rights_holder):
    event = AuditEvent.objects.filter(organisation=rights_holder.organisation).first()
    event.action = "tampered"
    with pytest.raises(AuditLogImmutableError):
        event.save()
    with pytest.raises(AuditLogImmutableError):
        event.delete()


def test_the_database_refuses_update_and_delete_of_audit_rows_bypassing_the_orm(rights_holder):
    event = AuditEvent.objects.filter(organisation=rights_holder.organisation).first()
    original_action = event.action
    for statement in (
        "UPDATE accounts_auditevent SET action = 'tampered' WHERE id = %s",
        "DELETE FROM accounts_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event.pk])
    # bulk queryset paths go through SQL too
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    event.refresh_from_db()
    assert event.action == original_action


def test_audit_events_are_listed_only_for_the_callers_organisation(rights_holder, outsider):
    body = outsider.client().get("/api/v1/audit-events/").json()
    assert body["count"] >= 1
    assert {e["organisation"] for e in body["results"]} == {outsider.organisation.code}
