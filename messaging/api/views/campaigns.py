"""The campaigns under /api/v1/ (URLs in messaging/urls.py), through the campaign room's
services (messaging/api/campaigns.py names the fields):

    GET  POST   campaigns                     list (status, cursor) / create (JSON or multipart)
    GET         campaigns/<id>                one campaign: pre-flight numbers, progress, ETA
    POST        campaigns/<id>/start, pause, resume, cancel
    GET         campaigns/<id>/report         one row per recipient (cursor); ?format=csv
    GET         campaigns/<id>/report.csv     the report as the page's CSV

Viewers read; senders create and run; another team's campaign is a 404.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from messaging.api import campaigns as api_campaigns
from messaging.api import idempotency, paging
from messaging.api.auth import require
from messaging.api.problems import Problem
from messaging.api.views.resources import CURSOR, FORM_OVERHEAD, ApiView, _created
from messaging.campaigns import report
from messaging.models import Campaign, CampaignStatus, Role

PAGE_SIZE = 100


def _campaign(team, pk) -> Campaign:
    found = (
        Campaign.objects.filter(team=team, pk=pk)
        .select_related("created_by")
        .prefetch_related("senders")
        .first()
    )
    if found is None:
        raise Http404
    return found


class CampaignList(ApiView):
    parser_classes = [JSONParser, MultiPartParser]

    def max_body(self, request) -> int:
        if request.content_type.startswith("multipart/form-data"):
            # The list, and the files everyone gets.
            return (
                settings.CONTACTS_IMPORT_MAX_BYTES
                + settings.COMPOSE_MAX_REQUEST_BYTES
                + FORM_OVERHEAD
            )
        return settings.API_MAX_JSON_BYTES

    @extend_schema(
        operation_id="campaigns_list",
        parameters=[
            OpenApiParameter("status", str, enum=CampaignStatus.values),
            CURSOR,
        ],
        responses=api_campaigns.CampaignPageOut,
    )
    def get(self, request):
        queryset = (
            Campaign.objects.filter(team=self.membership.team)
            .select_related("created_by")
            .prefetch_related("senders")
            .order_by("-pk")
        )
        status_value = self.query("status", 20)
        if status_value:
            if status_value not in CampaignStatus.values:
                raise Problem(400, "Unknown status.", errors={"status": ["Not a status."]})
            queryset = queryset.filter(status=status_value)
        cursor = self.query("cursor", 30)
        if cursor:
            queryset = queryset.filter(pk__lt=paging.decode_id_cursor(cursor))
        rows = list(queryset[: PAGE_SIZE + 1])
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        return Response(
            {
                "results": api_campaigns.CampaignBriefOut(rows, many=True).data,
                "next": str(rows[-1].pk) if more else None,
            }
        )

    @extend_schema(
        operation_id="campaigns_create",
        request={
            "application/json": api_campaigns.CampaignCreateSerializer,
            "multipart/form-data": api_campaigns.CampaignCreateMultipartSerializer,
        },
        parameters=[
            OpenApiParameter(
                idempotency.HEADER, str, OpenApiParameter.HEADER, description="Create once."
            )
        ],
        responses={201: api_campaigns.CampaignOut},
    )
    def post(self, request):
        membership = self.membership

        def work():
            multipart = request.content_type.startswith("multipart/form-data")
            serializer_class = (
                api_campaigns.CampaignCreateMultipartSerializer
                if multipart
                else api_campaigns.CampaignCreateSerializer
            )
            serializer = serializer_class(data=request.data)
            serializer.is_valid(raise_exception=True)
            require(membership, Role.SENDER, "Creating campaigns")
            campaign = api_campaigns.create(membership, serializer.validated_data)
            return _created(api_campaigns.detail(_campaign(membership.team, campaign.pk)))

        return idempotency.run_once(request, membership, work)


class CampaignDetail(ApiView):
    @extend_schema(operation_id="campaigns_read", responses=api_campaigns.CampaignOut)
    def get(self, request, pk):
        return Response(api_campaigns.detail(_campaign(self.membership.team, pk)))


def _act(view, pk, action: str, verb: str) -> Response:
    """The page's rules: another team's campaign is a 404, a viewer's key a 403, and a state
    that does not allow it a 409 with the reason."""
    membership = view.membership
    campaign = _campaign(membership.team, pk)
    require(membership, Role.SENDER, verb)
    api_campaigns.act(campaign, action)
    return Response(api_campaigns.detail(_campaign(membership.team, pk)))


def _action_schema(action: str, refused: str):
    return extend_schema(
        operation_id=f"campaigns_{action}",
        request=None,
        responses={200: api_campaigns.CampaignOut, 409: OpenApiResponse(description=refused)},
    )


class CampaignStart(ApiView):
    @_action_schema("start", "Not a campaign that can start (the reason says why).")
    def post(self, request, pk):
        return _act(self, pk, "start", "Starting campaigns")


class CampaignPause(ApiView):
    @_action_schema("pause", "Not a running campaign.")
    def post(self, request, pk):
        return _act(self, pk, "pause", "Pausing campaigns")


class CampaignResume(ApiView):
    @_action_schema("resume", "Not a paused or stopped campaign.")
    def post(self, request, pk):
        return _act(self, pk, "resume", "Resuming campaigns")


class CampaignCancel(ApiView):
    @_action_schema("cancel", "Done or canceled already.")
    def post(self, request, pk):
        return _act(self, pk, "cancel", "Canceling campaigns")


def _csv(campaign: Campaign) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        api_campaigns.report_csv_lines(campaign), content_type="text/csv; charset=utf-8"
    )
    name = api_campaigns.report_file_name(campaign)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


CSV_RESPONSE = OpenApiResponse(
    OpenApiTypes.STR, description="The report as the campaign's page gives it (CSV)."
)


class CampaignReport(ApiView):
    renderer_classes = [JSONRenderer, api_campaigns.CsvRenderer]

    @extend_schema(
        operation_id="campaigns_report",
        parameters=[
            CURSOR,
            OpenApiParameter(
                "format", str, enum=["json", "csv"], description="csv: the whole report as CSV."
            ),
        ],
        responses={
            (200, "application/json"): api_campaigns.ReportPageOut,
            (200, "text/csv"): CSV_RESPONSE,
        },
    )
    def get(self, request, pk):
        campaign = _campaign(self.membership.team, pk)
        if request.accepted_renderer.format == "csv":
            return _csv(campaign)
        rows = report.rows_of(campaign)
        cursor = self.query("cursor", 60)
        if cursor:
            position, last = paging.decode_pair_cursor(cursor)
            rows = rows.filter(Q(position__gt=position) | Q(position=position, pk__gt=last))
        rows = list(rows[: PAGE_SIZE + 1])
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        return Response(
            {
                "results": api_campaigns.ReportRowOut(
                    [api_campaigns.report_row(row) for row in rows], many=True
                ).data,
                "next": paging.encode_pair_cursor(rows[-1].position, rows[-1].pk) if more else None,
            }
        )


class CampaignReportCsv(ApiView):
    renderer_classes = [api_campaigns.CsvRenderer, JSONRenderer]

    @extend_schema(
        operation_id="campaigns_report_csv",
        parameters=[OpenApiParameter("format", str, exclude=True)],
        responses={(200, "text/csv"): CSV_RESPONSE},
    )
    def get(self, request, pk):
        return _csv(_campaign(self.membership.team, pk))
