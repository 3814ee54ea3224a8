"""RingCentral's ``page``/``perPage`` query parameters and the ``paging``/``navigation`` blocks."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from .errors import invalid_parameter
from .wire import Request

MAX_PER_PAGE = 1000


def _positive(req: Request, name: str, default: int, maximum: int) -> int:
    raw = req.query_one(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_parameter(name) from None
    if not 1 <= value <= maximum:
        raise invalid_parameter(name)
    return value


def page_params(req: Request, default_per_page: int = 100) -> tuple[int, int]:
    """(page, perPage) from the query; CMN-101 when either is not a positive integer in range."""
    return (
        _positive(req, "page", 1, 1_000_000),
        _positive(req, "perPage", default_per_page, MAX_PER_PAGE),
    )


def paginate(
    req: Request, base_uri: str, items: list[Any], page: int, per_page: int
) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """The slice of ``items`` for ``page`` plus the ``paging`` and ``navigation`` objects."""
    total = len(items)
    pages = math.ceil(total / per_page) if total else 0
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    paging: dict[str, Any] = {
        "page": page,
        "perPage": per_page,
        "totalPages": pages,
        "totalElements": total,
    }
    if chunk:
        paging["pageStart"] = start
        paging["pageEnd"] = start + len(chunk) - 1

    def uri(target: int) -> dict[str, str]:
        query = [(k, v) for k, values in req.query.items() for v in values if k != "page"]
        query.append(("page", str(target)))
        return {"uri": f"{base_uri}?{urlencode(query)}"}

    navigation: dict[str, Any] = {}
    if pages:
        navigation["firstPage"] = uri(1)
        navigation["lastPage"] = uri(pages)
        if page > 1:
            navigation["previousPage"] = uri(min(page - 1, pages))
        if page < pages:
            navigation["nextPage"] = uri(page + 1)
    return chunk, paging, navigation
