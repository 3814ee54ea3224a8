"""The Webhooks pages of the current team (team admins only; another team's endpoint is 404).

A secret is shown on the page that answers its creation or rotation and never again: it is
rendered, not redirected to, so it never sits in a URL, a session or a flash message.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from messaging.hooks import endpoints, events
from messaging.hooks.forms import EndpointForm
from messaging.models import DeliveryStatus, HookEvent, Role, WebhookDelivery, WebhookEndpoint
from messaging.teams.permissions import get_rw_team_for_user, get_team_for_user

RECENT_DELIVERIES = 50


def _admin(request):
    return get_rw_team_for_user(request, role=Role.ADMIN)


def _admin_and_endpoint(request, pk):
    """Another team's endpoint is 404 whatever the role; then only admins go on (403)."""
    membership = get_team_for_user(request)
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk, team=membership.team)
    endpoints.require_admin(membership)
    return membership, endpoint


@login_required
def webhook_list(request):
    membership = _admin(request)
    found = WebhookEndpoint.objects.filter(team=membership.team)
    return render(request, "hooks/list.html", {"team": membership.team, "endpoints": found})


@login_required
@require_http_methods(["GET", "POST"])
def webhook_create(request):
    membership = _admin(request)
    form = EndpointForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        endpoint, secret = endpoints.create(
            membership,
            url=form.cleaned_data["url"],
            description=form.cleaned_data["description"],
            events=form.cleaned_data["events"],
        )
        return _detail(request, membership, endpoint, secret=secret, status=201)
    status = 400 if form.is_bound else 200
    return render(
        request, "hooks/create.html", {"team": membership.team, "form": form}, status=status
    )


def _detail(request, membership, endpoint, *, secret: str = "", status: int = 200):
    deliveries = (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .prefetch_related("tries")
        .order_by("-created_at", "-pk")[:RECENT_DELIVERIES]
    )
    return render(
        request,
        "hooks/detail.html",
        {
            "team": membership.team,
            "endpoint": endpoint,
            "secret": secret,
            "deliveries": deliveries,
            "event_labels": [HookEvent(e).label for e in endpoint.events if e in HookEvent.values],
        },
        status=status,
    )


@login_required
def webhook_detail(request, pk):
    membership, endpoint = _admin_and_endpoint(request, pk)
    return _detail(request, membership, endpoint)


@login_required
@require_POST
def webhook_rotate(request, pk):
    membership, endpoint = _admin_and_endpoint(request, pk)
    secret = endpoints.rotate_secret(membership, endpoint)
    messages.success(request, "A new secret is in use; the old one no longer signs anything.")
    return _detail(request, membership, endpoint, secret=secret)


@login_required
@require_POST
def webhook_toggle(request, pk):
    membership, endpoint = _admin_and_endpoint(request, pk)
    endpoints.set_active(membership, endpoint, not endpoint.is_active)
    state = "enabled" if endpoint.is_active else "disabled"
    messages.success(request, f"The endpoint is {state}.")
    return HttpResponseRedirect(reverse("webhook_detail", args=[endpoint.pk]))


@login_required
@require_POST
def webhook_delete(request, pk):
    membership, endpoint = _admin_and_endpoint(request, pk)
    url = endpoint.url
    endpoints.delete(membership, endpoint)
    messages.success(request, f"The endpoint {url} is deleted; nothing more is sent to it.")
    return HttpResponseRedirect(reverse("webhook_list"))


@login_required
@require_POST
def webhook_test(request, pk):
    membership, endpoint = _admin_and_endpoint(request, pk)
    if not endpoint.is_active:
        messages.error(request, "Enable the endpoint before sending it a test event.")
    else:
        test = events.send_test(endpoint)
        messages.success(request, f"A test event ({test.event_id}) is on its way.")
    return HttpResponseRedirect(reverse("webhook_detail", args=[endpoint.pk]))


@login_required
@require_POST
def webhook_redeliver(request, pk, delivery_id):
    membership, endpoint = _admin_and_endpoint(request, pk)
    found = get_object_or_404(WebhookDelivery, pk=delivery_id, endpoint=endpoint)
    if not endpoint.is_active:
        messages.error(request, "Enable the endpoint before redelivering to it.")
    elif found.status == DeliveryStatus.PENDING and found.attempts == 0:
        messages.info(request, "This delivery has not been tried yet; it is on its way.")
    else:
        events.redeliver(found)
        messages.success(request, f"{found.event_id} is being delivered again.")
    return HttpResponseRedirect(reverse("webhook_detail", args=[endpoint.pk]))
