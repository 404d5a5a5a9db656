"""The ledger's invariants in the database itself.

PostgreSQL: a deferred constraint trigger refuses, at commit, any journal entry whose postings
do not sum to zero per currency; a posting's currency must be its account's; posted entries and
postings refuse UPDATE, DELETE and TRUNCATE. SQLite: the same immutability triggers (the
balance is checked by the posting service, as SQLite has no deferred triggers).
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION royalties_posting_balance_check() RETURNS trigger AS $$
DECLARE
    bad record;
BEGIN
    SELECT p.currency, SUM(p.amount_minor) AS total INTO bad
      FROM royalties_posting p
     WHERE p.entry_id = NEW.entry_id
     GROUP BY p.currency
    HAVING SUM(p.amount_minor) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'journal entry ' || NEW.entry_id || ' does not balance in '
                      || bad.currency || ' (off by ' || bad.total || ')',
            ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER royalties_posting_balanced
    AFTER INSERT ON royalties_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION royalties_posting_balance_check();

CREATE OR REPLACE FUNCTION royalties_posting_currency_check() RETURNS trigger AS $$
BEGIN
    IF NEW.currency IS DISTINCT FROM
       (SELECT currency FROM royalties_ledgeraccount WHERE id = NEW.account_id) THEN
        RAISE EXCEPTION USING
            MESSAGE = 'posting currency ' || NEW.currency || ' differs from its account''s',
            ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER royalties_posting_currency BEFORE INSERT ON royalties_posting
    FOR EACH ROW EXECUTE FUNCTION royalties_posting_currency_check();

CREATE OR REPLACE FUNCTION royalties_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'posted ledger rows are immutable (' || TG_OP || ' on ' || TG_TABLE_NAME
                  || ' refused): post a reversing entry',
        ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER royalties_posting_immutable BEFORE UPDATE OR DELETE ON royalties_posting
    FOR EACH ROW EXECUTE FUNCTION royalties_ledger_refuse_change();
CREATE TRIGGER royalties_posting_no_truncate BEFORE TRUNCATE ON royalties_posting
    FOR EACH STATEMENT EXECUTE FUNCTION royalties_ledger_refuse_change();
CREATE TRIGGER royalties_journalentry_immutable BEFORE UPDATE OR DELETE ON royalties_journalentry
    FOR EACH ROW EXECUTE FUNCTION royalties_ledger_refuse_change();
CREATE TRIGGER royalties_journalentry_no_truncate BEFORE TRUNCATE ON royalties_journalentry
    FOR EACH STATEMENT EXECUTE FUNCTION royalties_ledger_refuse_change();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS royalties_posting_balanced ON royalties_posting;
DROP TRIGGER IF EXISTS royalties_posting_currency ON royalties_posting;
DROP TRIGGER IF EXISTS royalties_posting_immutable ON royalties_posting;
DROP TRIGGER IF EXISTS royalties_posting_no_truncate ON royalties_posting;
DROP TRIGGER IF EXISTS royalties_journalentry_immutable ON royalties_journalentry;
DROP TRIGGER IF EXISTS royalties_journalentry_no_truncate ON royalties_journalentry;
DROP FUNCTION IF EXISTS royalties_posting_balance_check();
DROP FUNCTION IF EXISTS royalties_posting_currency_check();
DROP FUNCTION IF EXISTS royalties_ledger_refuse_change();
"""
SQLITE_TABLES = ("royalties_posting", "royalties_journalentry")


def forward_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        for table in SQLITE_TABLES:
            for event in ("UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'posted ledger rows are immutable "
                    f"({event} refused): post a reversing entry'); END;"
                )


def backward_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    elif vendor == "sqlite":
        for table in SQLITE_TABLES:
            for event in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event};")


class Migration(migrations.Migration):
    dependencies = [("royalties", "0001_initial")]

    operations = [migrations.RunPython(forward_triggers, backward_triggers)]
