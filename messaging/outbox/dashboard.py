"""The dashboard's outbox numbers: folder counts and a 30-day chart of the current team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from messaging.outbox.folders import (
    ALL,
    BY_KEY,
    FOLDERS,
    count_label,
    folder_counts,
    stalled_connection_ids,
)

CHART_DAYS = 30
# Messages are sent within minutes of being written (retries give up after about half an hour),
# so bounding by creation time lets the database use the team's created_at index.
_CHART_SLACK = timedelta(days=7)
_CHART_W, _CHART_H = 640, 200
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 40, 12, 12, 28


@dataclass
class Series:
    key: str
    label: str
    values: list[int]
    points: str = ""

    @property
    def total(self) -> int:
        return sum(self.values)


def _nice_max(value: int) -> int:
    """The smallest of 2, 4, 10, 20, 40, 100, … that is at least `value`: a round top line
    whose half, the middle line, is a whole number too."""
    step = 1
    while True:
        for m in (2, 4, 10):
            if step * m >= value:
                return step * m
        step *= 10


def daily_chart(team, *, days: int = CHART_DAYS, today: date | None = None) -> dict:
    """Sent / delivered / failed per day for the last `days` days (local dates), with the SVG
    geometry ready for the template. Two grouped queries.

    "Sent" counts messages RingCentral accepted that day (sent_at); "delivered" and "failed" count
    messages that reached that outcome that day (final_at, else their last update).
    """
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, time.min))
    recent = team.messages.filter(created_at__gte=start - _CHART_SLACK).order_by()
    day_index = {first + timedelta(days=i): i for i in range(days)}

    sent = [0] * days
    for row in (
        recent.filter(sent_at__gte=start)
        .annotate(day=TruncDate("sent_at"))
        .values("day")
        .annotate(n=Count("pk"))
    ):
        if row["day"] in day_index:
            sent[day_index[row["day"]]] += row["n"]

    delivered_statuses = set(BY_KEY["delivered"].statuses)
    failed_statuses = set(BY_KEY["failed"].statuses)
    delivered, failed = [0] * days, [0] * days
    for row in (
        recent.filter(status__in=delivered_statuses | failed_statuses)
        .annotate(done_at=Coalesce("final_at", "updated_at"))
        .filter(done_at__gte=start)
        .annotate(day=TruncDate("done_at"))
        .values("day", "status")
        .annotate(n=Count("pk"))
    ):
        if row["day"] in day_index:
            target = delivered if row["status"] in delivered_statuses else failed
            target[day_index[row["day"]]] += row["n"]

    series = [
        Series("sent", "Sent (accepted by RingCentral)", sent),
        Series("delivered", "Delivered", delivered),
        Series("failed", "Failed", failed),
    ]
    top = _nice_max(max([1, *sent, *delivered, *failed]))
    plot_w = _CHART_W - _PAD_LEFT - _PAD_RIGHT
    plot_h = _CHART_H - _PAD_TOP - _PAD_BOTTOM
    step = plot_w / (days - 1) if days > 1 else 0

    def x(i):
        return round(_PAD_LEFT + i * step, 1)

    def y(v):
        return round(_PAD_TOP + plot_h - v / top * plot_h, 1)

    for s in series:
        s.points = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(s.values))
    dates = [first + timedelta(days=i) for i in range(days)]
    busiest = max(range(days), key=lambda i: sent[i])
    return {
        "days": days,
        "dates": dates,
        "series": series,
        "rows": [
            {"date": d, "sent": sent[i], "delivered": delivered[i], "failed": failed[i]}
            for i, d in enumerate(dates)
        ],
        "width": _CHART_W,
        "height": _CHART_H,
        "plot": {
            "left": _PAD_LEFT,
            "right": _CHART_W - _PAD_RIGHT,
            "top": _PAD_TOP,
            "bottom": _PAD_TOP + plot_h,
        },
        "gridlines": [{"value": v, "y": y(v)} for v in sorted({0, top // 2, top})],
        "ticks": [
            {"x": x(i), "date": dates[i], "anchor": anchor}
            for i, anchor in ((0, "start"), (days // 2, "middle"), (days - 1, "end"))
        ],
        "busiest": {"date": dates[busiest], "sent": sent[busiest]} if sent[busiest] else None,
    }


def dashboard_stats(membership) -> dict:
    """Context for templates/messaging/dashboard_stats.html: folder counts and the chart."""
    team = membership.team
    stalled_ids = stalled_connection_ids(team.pk)
    counts = folder_counts(team.messages.all(), stalled_ids)
    outbox_url = reverse("outbox")
    return {
        "stats_folders": [
            {
                "key": f.key,
                "label": f.label,
                "count": counts[f.key],
                "count_label": count_label(counts[f.key]),
                "url": f"{outbox_url}?{urlencode({'folder': f.key})}",
            }
            for f in FOLDERS
        ],
        "stats_total": counts[ALL],
        "stats_total_label": count_label(counts[ALL]),
        "stats_outbox_url": outbox_url,
        "chart": daily_chart(team),
    }
