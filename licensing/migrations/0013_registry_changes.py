"""The registry's change log (PostgreSQL): one row per statement that changes works, their
identifiers or their consent (a work's own, or its catalogue's default), written by
statement-level triggers, so that a snapshot of the identifier index
can be tagged with the changes it has seen (``licensing.snapshots``). Each row carries a
random token: a database dropped and created again never repeats a tag. SQLite (the embedded
demo database) keeps no log and takes no snapshots."""

from django.db import migrations

CREATE = """
CREATE TABLE licensing_registry_change (
    id bigserial PRIMARY KEY,
    token uuid NOT NULL DEFAULT gen_random_uuid(),
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION licensing_registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO licensing_registry_change DEFAULT VALUES;
    RETURN NULL;
END $$;
CREATE TRIGGER licensing_work_registry_change
    AFTER INSERT OR DELETE OR TRUNCATE ON licensing_work
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_registry_changed();
CREATE TRIGGER licensing_work_registry_change_update
    AFTER UPDATE OF id, consent_training, consent_fine_tuning, consent_rag ON licensing_work
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_registry_changed();
CREATE TRIGGER licensing_catalogue_registry_change
    AFTER UPDATE OF default_consent ON licensing_catalogue
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_registry_changed();
CREATE TRIGGER licensing_workidentifier_registry_change
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON licensing_workidentifier
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_registry_changed();
INSERT INTO licensing_registry_change DEFAULT VALUES;
"""

DROP = """
DROP TRIGGER IF EXISTS licensing_workidentifier_registry_change ON licensing_workidentifier;
DROP TRIGGER IF EXISTS licensing_catalogue_registry_change ON licensing_catalogue;
DROP TRIGGER IF EXISTS licensing_work_registry_change_update ON licensing_work;
DROP TRIGGER IF EXISTS licensing_work_registry_change ON licensing_work;
DROP FUNCTION IF EXISTS licensing_registry_changed();
DROP TABLE IF EXISTS licensing_registry_change;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0012_declaration_work_usage_work_index_again"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
