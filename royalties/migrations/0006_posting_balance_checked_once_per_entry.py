"""The balance of a journal entry is checked once per entry at commit, not once per posting.

The deferred constraint trigger of 0002 fires for every posting row and summed all postings
of the row's entry each time: an entry of k postings cost O(k²) at commit. A cycle's
allocation entry has one posting per holder with earnings (200,000 in a national society),
which made approval take hours (5,000 postings 3.6 s, 20,000 postings 73 s; found by
bench/society.py). Constraint triggers can only be row-level, so the function now remembers,
for the rest of the transaction, the highest posting id it has already checked for an entry
(a transaction-local setting, `blanket.balanced_<entry id>`) and skips the rows up to it.
Deferred firings run in insertion order, so the first one for an entry sums every posting
inserted so far and the others return at once; a posting inserted later in the same
transaction has a higher id and is checked again with all of its entry's postings (also
after `SET CONSTRAINTS ... IMMEDIATE`). Same rule, same error, O(k) per entry.
"""

from django.db import migrations

CHECK_ONCE = """
CREATE OR REPLACE FUNCTION royalties_posting_balance_check() RETURNS trigger AS $$
DECLARE
    bad record;
    checked text;
    highest bigint;
BEGIN
    checked := current_setting('blanket.balanced_' || NEW.entry_id, true);
    IF checked IS NOT NULL AND checked <> '' AND NEW.id <= checked::bigint THEN
        RETURN NULL;
    END IF;
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
    SELECT max(p.id) INTO highest FROM royalties_posting p WHERE p.entry_id = NEW.entry_id;
    PERFORM set_config('blanket.balanced_' || NEW.entry_id, highest::text, true);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""

EVERY_ROW = """
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
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CHECK_ONCE)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(EVERY_ROW)


class Migration(migrations.Migration):
    dependencies = [("royalties", "0005_allocation_runs")]

    operations = [migrations.RunPython(forward, backward)]
