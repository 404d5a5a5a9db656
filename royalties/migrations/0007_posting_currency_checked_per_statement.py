"""A posting's currency is checked against its account once per INSERT statement, set-based.

The BEFORE INSERT row trigger of 0002 looked the posting's account up for every row with a
query whose plan PL/pgSQL caches for the session. When that plan is made while
`royalties_ledgeraccount` is small (a new ledger, or early in a session: a cycle's approval
posts its first entries before it creates the holders' accounts), it is a sequential scan of
the accounts, kept after the table has grown: approving a cycle then read every account once
per posting, O(postings x accounts) (20,000 holders: 40,000 accounts, 20,000 postings, about
800M account rows read and 65 of the approval's 75 s; found by bench/society.py).

The check is now an AFTER INSERT statement-level trigger over the statement's new rows (a
transition table), one join per statement, planned when it runs (dynamic SQL, so never a
stale cached plan): same rule, same error (`check_violation`, "posting currency ... differs
from its account's"), refused before the statement completes as before.
"""

from django.db import migrations

PER_STATEMENT = """
DROP TRIGGER IF EXISTS royalties_posting_currency ON royalties_posting;
CREATE OR REPLACE FUNCTION royalties_posting_currency_check() RETURNS trigger AS $$
DECLARE
    bad_currency text;
    mismatched bigint;
BEGIN
    EXECUTE 'SELECT n.currency FROM royalties_posting_new n '
            'LEFT JOIN royalties_ledgeraccount a ON a.id = n.account_id '
            'WHERE n.currency IS DISTINCT FROM a.currency LIMIT 1'
       INTO bad_currency;
    GET DIAGNOSTICS mismatched = ROW_COUNT;
    IF mismatched > 0 THEN
        RAISE EXCEPTION USING
            MESSAGE = 'posting currency ' || bad_currency || ' differs from its account''s',
            ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER royalties_posting_currency AFTER INSERT ON royalties_posting
    REFERENCING NEW TABLE AS royalties_posting_new
    FOR EACH STATEMENT EXECUTE FUNCTION royalties_posting_currency_check();
"""

PER_ROW = """
DROP TRIGGER IF EXISTS royalties_posting_currency ON royalties_posting;
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
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PER_STATEMENT)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PER_ROW)


class Migration(migrations.Migration):
    dependencies = [("royalties", "0006_posting_balance_checked_once_per_entry")]

    operations = [migrations.RunPython(forward, backward)]
