"""``DeclarationWorkUsage`` partitioned by declaration (PostgreSQL; SQLite keeps one table).

The table becomes ``PARTITION BY LIST (declaration_id)`` with the same name, columns, primary
key (declaration, work), work index and check constraint, so every query reads it as before.
The rows already stored stay where they are: the old table is attached as the DEFAULT
partition (its indexes are attached to the parent's, nothing is rebuilt). From now on a
declaration with many matched works writes its rows into a table of its own, builds its two
indexes in bulk and attaches it (``licensing.services.declarations``); small ones, and rows
added later by hand matching, go to the default partition through the parent, as before.
"""

from django.db import migrations

TABLE = "licensing_declarationworkusage"
DEFAULT = f"{TABLE}_default"


def _work_index(cursor, table: str) -> str:
    cursor.execute(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] "
        "WHERE x.indrelid = %s::regclass AND x.indnatts = 1 AND a.attname = 'work_id'",
        [table],
    )
    row = cursor.fetchone()
    return row[0] if row else f"{table}_work_id"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        work_index = _work_index(cursor, TABLE)
    for statement in (
        f"ALTER TABLE {TABLE} RENAME TO {DEFAULT}",
        f"ALTER INDEX {TABLE}_pkey RENAME TO {DEFAULT}_pkey",
        f"ALTER INDEX {work_index} RENAME TO {DEFAULT}_work_id",
        f"CREATE TABLE {TABLE} (LIKE {DEFAULT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        "PARTITION BY LIST (declaration_id)",
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (declaration_id, work_id)",
        f"CREATE INDEX {work_index} ON {TABLE} (work_id)",
        f"ALTER TABLE {TABLE} ATTACH PARTITION {DEFAULT} DEFAULT",
    ):
        schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        work_index = _work_index(cursor, TABLE)
    for statement in (
        f"CREATE TABLE {TABLE}_plain (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        f"INSERT INTO {TABLE}_plain SELECT * FROM {TABLE}",  # noqa: S608  # nosec B608 - our names
        f"DROP TABLE {TABLE}",
        f"ALTER TABLE {TABLE}_plain RENAME TO {TABLE}",
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (declaration_id, work_id)",
        f"CREATE INDEX {work_index} ON {TABLE} (work_id)",
    ):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0013_registry_changes"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
