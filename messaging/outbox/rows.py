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

from django.db import DEFAULT_DB_ALIAS, connections
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
        self.key = (model, tuple(self.fields))

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


def database():
    """The default database's connection object itself. `django.db.connection` looks it up
    again (a context-local read) on every attribute, which the loops below would pay per value."""
    return connections[DEFAULT_DB_ALIAS]


@cache
def _converters(key: tuple[type[Model], tuple[str, ...]], vendor: str):
    """The fields whose values the ORM converts when read from this backend: (position,
    column, converters) for each; the other values are used as the driver gives them."""
    model, fields = key
    connection = database()
    result = []
    for position, attname in enumerate(fields):
        field = model._meta.get_field(_field_name(model, attname))
        column = field.get_col(model._meta.db_table)
        funcs = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if funcs:
            result.append((position, column, funcs))
    return result


def load(columns: Columns, row: Sequence, connection=None) -> Model:
    """A model instance from `row` (values in `columns.fields` order), as the ORM makes it;
    `connection`, when the caller has it, spares looking it up again."""
    connection = connection or database()
    values = list(row)
    for position, column, funcs in _converters(columns.key, connection.vendor):
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


def prep(model: type[Model], field: str, value, connection=None):
    """`value` as the database takes it for `model.field` (JSON, dates, …); `connection`, when
    the caller has it, spares looking it up again."""
    return _field(model, field).get_db_prep_save(value, connection or database())


def attach_prefetched(instance: Model, related: dict[str, list[Model]]) -> None:
    """Make `instance.<name>.all()` answer `related[name]` without a query, as
    `prefetch_related` leaves it.

    Making the related querysets costs more than the rest of reading a message for sending,
    and the send path reads the rows through `prefetched` instead: the querysets are made
    when something first asks for one (`PrefetchedOnDemand`), each filtered on the instance
    like any related manager's, so a `.filter()` on one stays within the instance's rows.
    """
    by_cache_name = {
        getattr(type(instance), name).rel.cache_name: (name, rows) for name, rows in related.items()
    }
    instance._prefetched_objects_cache = PrefetchedOnDemand(instance, by_cache_name)


def prefetched(instance: Model, name: str) -> list[Model]:
    """The rows `attach_prefetched` gave `instance` for `name`, or else
    `instance.<name>.all()` as a list."""
    cache = getattr(instance, "_prefetched_objects_cache", None)
    if isinstance(cache, PrefetchedOnDemand):
        rows = cache.pending_rows(getattr(type(instance), name).rel.cache_name)
        if rows is not None:
            return rows
    return list(getattr(instance, name).all())


class PrefetchedOnDemand(dict):
    """An instance's `_prefetched_objects_cache` whose querysets are made on first use.

    Django reads the cache with `[name]` (a related manager's `get_queryset`), `in`, `get`,
    `pop` and `del`; the first makes only the queryset asked for, every other access makes
    them all first, so the dict then behaves exactly as the one `prefetch_related` fills.
    """

    def __init__(self, instance: Model, pending: dict[str, tuple[str, list[Model]]]):
        super().__init__()
        self._instance = instance
        self._pending = pending

    def pending_rows(self, cache_name: str) -> list[Model] | None:
        """The rows cached under `cache_name`, whether its queryset was made yet or not."""
        if dict.__contains__(self, cache_name):
            return dict.__getitem__(self, cache_name)._result_cache
        entry = self._pending.get(cache_name)
        return entry[1] if entry is not None else None

    def __missing__(self, cache_name: str):
        self._make(cache_name)
        return dict.__getitem__(self, cache_name)

    def _make(self, cache_name: str) -> None:
        name, rows = self._pending.pop(cache_name)
        # Not pending any more, so the manager finds nothing cached and builds the queryset
        # filtered on the instance, as it would for a query.
        queryset = getattr(self._instance, name).get_queryset()
        queryset._result_cache = rows
        queryset._prefetch_done = True
        dict.__setitem__(self, cache_name, queryset)

    def _make_all(self) -> None:
        for cache_name in list(self._pending):
            self._make(cache_name)

    def __setitem__(self, key, value) -> None:
        self._pending.pop(key, None)  # replaced, as by a later prefetch_related
        dict.__setitem__(self, key, value)

    def clear(self) -> None:
        self._pending.clear()
        dict.clear(self)

    def __contains__(self, key) -> bool:
        return key in self._pending or dict.__contains__(self, key)

    def get(self, key, default=None):
        self._make_all()
        return dict.get(self, key, default)

    def pop(self, key, *default):
        self._make_all()
        return dict.pop(self, key, *default)

    def __delitem__(self, key) -> None:
        self._make_all()
        dict.__delitem__(self, key)

    def __iter__(self):
        self._make_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        return len(self._pending) + dict.__len__(self)

    def keys(self):
        self._make_all()
        return dict.keys(self)

    def values(self):
        self._make_all()
        return dict.values(self)

    def items(self):
        self._make_all()
        return dict.items(self)

    def copy(self) -> dict:
        self._make_all()
        return dict(dict.items(self))

    def __reduce__(self):
        # Pickled (a cached model instance) as the plain dict it stands for.
        self._make_all()
        return (dict, (dict(dict.items(self)),))
