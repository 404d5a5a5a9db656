"""A work's shares may never add up to more than 100%, whoever writes them (ORM, COPY, raw SQL).

PostgreSQL: statement-level triggers over the transition table, so a bulk INSERT of a million
shares is checked in one grouped query. SQLite: a row-level check per insert or update.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION licensing_share_sum_check() RETURNS trigger AS $$
DECLARE
    bad_work bigint;
BEGIN
    SELECT s.work_id INTO bad_work
      FROM licensing_share s
     WHERE s.work_id IN (SELECT DISTINCT work_id FROM new_rows)
     GROUP BY s.work_id
    HAVING SUM(s.share_ppm) > 1000000
     LIMIT 1;
    IF bad_work IS NOT NULL THEN
        RAISE EXCEPTION USING
            MESSAGE = 'shares of work ' || bad_work || ' add up to more than 100 percent',
            ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER licensing_share_sum_insert AFTER INSERT ON licensing_share
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_share_sum_check();
CREATE TRIGGER licensing_share_sum_update AFTER UPDATE ON licensing_share
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_share_sum_check();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS licensing_share_sum_insert ON licensing_share;
DROP TRIGGER IF EXISTS licensing_share_sum_update ON licensing_share;
DROP FUNCTION IF EXISTS licensing_share_sum_check();
"""
SQLITE_CHECK = """
CREATE TRIGGER licensing_share_sum_{event} AFTER {EVENT} ON licensing_share
WHEN (SELECT SUM(share_ppm) FROM licensing_share WHERE work_id = NEW.work_id) > 1000000
BEGIN SELECT RAISE(ABORT, 'shares of a work add up to more than 100 percent'); END;
"""


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        for event in ("insert", "update"):
            schema_editor.execute(SQLITE_CHECK.format(event=event, EVENT=event.upper()))


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    elif vendor == "sqlite":
        for event in ("insert", "update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS licensing_share_sum_{event};")


class Migration(migrations.Migration):
    dependencies = [("licensing", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
