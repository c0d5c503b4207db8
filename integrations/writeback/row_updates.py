"""Updating many rows, each to its own values, without Django's `bulk_update`.

`bulk_update` builds and resolves a `When` expression per row and field,
and in profiles of `benchmarks/throughput.py` that took the largest share
of a drain's CPU time and of a bulk ingest's. `update_column` builds the
same `CASE id WHEN ... THEN ... END` statement as SQL text with parameters,
for one column of a plain type (integers, strings, JSON). `update_rows`
sends one parameterized UPDATE per row through `executemany`, which both
SQLite and psycopg run without a Python round trip per row.
"""

from django.db import connection


def update_column(model, field_name: str, values_by_pk: dict, *, chunk_size: int = 500):
    """Set `field_name` of each row in `values_by_pk` ({primary key: value}) with one UPDATE per chunk."""
    if not values_by_pk:
        return
    field = model._meta.get_field(field_name)
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(field.column)
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    # PostgreSQL types a CASE by its branches, so each value carries the column's type.
    cast = f"CAST(%s AS {field.cast_db_type(connection)})"

    items = list(values_by_pk.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), chunk_size):
            chunk = items[start:start + chunk_size]
            branches = " ".join(f"WHEN %s THEN {cast}" for _ in chunk)
            placeholders = ", ".join("%s" for _ in chunk)
            params = []
            for pk, value in chunk:
                params.extend([pk, field.get_db_prep_save(value, connection)])
            params.extend(pk for pk, _ in chunk)
            cursor.execute(
                f"UPDATE {table} SET {column} = CASE {pk_column} {branches} END WHERE {pk_column} IN ({placeholders})",
                params,
            )


def update_rows(model, objects, field_names: list[str]):
    """Save `field_names` of each object in `objects` with one UPDATE per row, sent as one `executemany`.

    Values go through each field's own database preparation, so datetimes
    and foreign keys are stored as `save()` would store them. `auto_now`
    fields are not touched: set them on the objects first.
    """
    if not objects:
        return
    fields = [model._meta.get_field(name) for name in field_names]
    table = connection.ops.quote_name(model._meta.db_table)
    assignments = ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in fields)
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    params = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields] + [obj.pk]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {pk_column} = %s", params)
