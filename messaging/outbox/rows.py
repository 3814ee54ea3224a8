"""Rows of the send path read and written with SQL written once, not compiled per call.

A send touches the same few rows in the same few ways every time, and compiling each ORM query
anew cost more CPU than the database spent answering it. `Columns` names a model's table and
columns once per process; `load` turns a row into a model instance the way the ORM does
(`from_db`, with the backend's and the fields' converters), so the rest of the code keeps
working with model instances. Fields left out of a row are deferred: reading one later costs a
query, never a wrong value.

Everything here is plain SQL that PostgreSQL and SQLite (3.35 and later, for `RETURNING`) both
accept; parameters go through each field's own `get_db_prep_save`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from django.db import connection as default_connection
from django.db.models import Model


class Columns:
    """A model's table and the quoted columns of `fields` (attribute names), in that order."""

    def __init__(self, model: type[Model], fields: Sequence[str]):
        quote = default_connection.ops.quote_name
        self.model = model
        self.table = quote(model._meta.db_table)
        self.fields = list(fields)
        self.columns = [
            quote(model._meta.get_field(_field_name(model, f)).column) for f in self.fields
        ]

    def select_list(self, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + column for column in self.columns)

    def column(self, field: str) -> str:
        return self.columns[self.fields.index(field)]


def _field_name(model: type[Model], attname: str) -> str:
    return _field(model, attname).name


@cache
def _field(model: type[Model], attname: str):
    for field in model._meta.concrete_fields:
        if field.attname == attname:
            return field
    raise LookupError(f"{model.__name__} has no column {attname!r}")


@cache
def _converters(model: type[Model], fields: tuple[str, ...], vendor: str):
    """Per field, the converters the ORM would apply to a value read from this backend."""
    connection = default_connection
    result = []
    for attname in fields:
        field = model._meta.get_field(_field_name(model, attname))
        column = field.get_col(model._meta.db_table)
        funcs = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        result.append((column, funcs))
    return result


def load(columns: Columns, row: Sequence) -> Model:
    """A model instance from `row` (values in `columns.fields` order), as the ORM makes it."""
    connection = default_connection
    values = list(row)
    converters = _converters(columns.model, tuple(columns.fields), connection.vendor)
    for position, (column, funcs) in enumerate(converters):
        value = values[position]
        for convert in funcs:
            value = convert(value, column, connection)
        values[position] = value
    model = columns.model
    if len(values) != len(model._meta.concrete_fields):
        # from_db takes a partial row in the model's field order, the rest deferred.
        by_name = dict(zip(columns.fields, values, strict=True))
        values = [by_name[f.attname] for f in model._meta.concrete_fields if f.attname in by_name]
    return model.from_db(connection.alias, columns.fields, values)


def prep(model: type[Model], field: str, value):
    """`value` as the database takes it for `model.field` (JSON, dates, …)."""
    return _field(model, field).get_db_prep_save(value, default_connection)


def attach_prefetched(instance: Model, name: str, related: list[Model]) -> None:
    """Make `instance.<name>.all()` answer `related` without a query, as `prefetch_related`
    leaves it."""
    queryset = getattr(instance, name).get_queryset()
    queryset._result_cache = related
    queryset._prefetch_done = True
    if not hasattr(instance, "_prefetched_objects_cache"):
        instance._prefetched_objects_cache = {}
    instance._prefetched_objects_cache[getattr(type(instance), name).rel.cache_name] = queryset
