"""The address book's pages.

    GET       /contacts/                    the team's contacts by name (search, tag filter)
    GET/POST  /contacts/new/                a new contact (senders)
    GET       /contacts/<id>/               a contact: numbers, conversations, messages, consent
    GET/POST  /contacts/<id>/edit/          its form (senders)
    GET/POST  /contacts/<id>/merge/         merge another contact into it (senders)
    GET/POST  /contacts/<id>/delete/        delete it (admins)
    GET       /contacts/search.json?q=      suggestions for the compose page's recipients
    GET       /contacts/export.csv          every contact as CSV (senders)

Everything is looked up inside the current team: another team's contact is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from messaging import audit
from messaging.consent import checks
from messaging.contacts import book, exporting
from messaging.contacts.forms import ContactForm
from messaging.core.phones import format_number
from messaging.models import AuditAction, Contact, Conversation, OutboundMessage, Role
from messaging.teams.permissions import get_rw_team_for_user, get_team_for_user


def _contact(membership, pk) -> Contact:
    contact = Contact.objects.filter(team=membership.team, pk=pk).first()
    if contact is None:
        raise Http404
    return contact


def _after(request, team) -> tuple[str, int] | None:
    """`?after=<id>`: the page starts after that contact of the team (404 for anyone else's)."""
    raw = request.GET.get("after") or ""
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Http404
    found = Contact.objects.filter(team=team, pk=int(raw)).values_list("name", "pk").first()
    if found is None:
        raise Http404
    return found


@login_required
@never_cache
@require_GET
def contact_list(request):
    membership = get_team_for_user(request)
    team = membership.team
    search = (request.GET.get("q") or "").replace("\x00", "")[: book.MAX_SEARCH_LENGTH]
    tag = (request.GET.get("tag") or "").replace("\x00", "")[:50]
    after = _after(request, team)
    rows, more = book.page(book.contacts(team, search=search, tag=tag), after)
    query = {"q": search, "tag": tag}
    return render(
        request,
        "contacts/list.html",
        {
            "team": team,
            "rows": [
                {
                    "contact": c,
                    "numbers": [format_number(n.number) for n in c.numbers.all()],
                    "tags": [t.name for t in c.tags.all()],
                }
                for c in rows
            ],
            "tags": book.team_tags(team),
            "search": search,
            "tag": tag,
            "query": query,
            "next_after": rows[-1].pk if more else None,
            "first_page": after is None,
            "can_edit": membership.can(Role.SENDER),
            "can_import": membership.can(Role.ADMIN),
        },
    )


def _save(request, membership, contact, form):
    try:
        saved = book.save(
            membership.team,
            contact,
            fields=form.contact_fields(),
            numbers=form.cleaned_data["number_list"],
            tag_names=form.cleaned_data["tag_names"],
        )
    except book.ContactRefused as refused:
        for name, errors in refused.errors.items():
            for error in errors:
                form.add_error(name if name in form.fields else None, error)
        return None
    return saved


def _form_page(request, membership, form, contact, status=200):
    return render(
        request,
        "contacts/form.html",
        {"team": membership.team, "form": form, "contact": contact},
        status=status,
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def contact_new(request):
    membership = get_rw_team_for_user(request, role=Role.SENDER)
    if request.method != "POST":
        initial = {}
        if request.GET.get("number"):
            initial["numbers"] = request.GET["number"][:40].replace("\x00", "")
        return _form_page(request, membership, ContactForm(initial=initial), None)
    form = ContactForm(request.POST)
    if form.is_valid():
        saved = _save(request, membership, None, form)
        if saved:
            messages.success(request, f"{saved.display_name} added.")
            return HttpResponseRedirect(reverse("contact_detail", args=[saved.pk]))
    return _form_page(request, membership, form, None, status=400)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def contact_edit(request, pk):
    membership = get_team_for_user(request)
    contact = _contact(membership, pk)
    membership = get_rw_team_for_user(request, role=Role.SENDER)
    if request.method != "POST":
        form = ContactForm(initial=ContactForm.initial_for(contact))
        return _form_page(request, membership, form, contact)
    form = ContactForm(request.POST)
    if form.is_valid():
        saved = _save(request, membership, contact, form)
        if saved:
            messages.success(request, f"{saved.display_name} saved.")
            return HttpResponseRedirect(reverse("contact_detail", args=[saved.pk]))
    return _form_page(request, membership, form, contact, status=400)


def _consent(team_id: int, number: str) -> dict:
    """The number's consent as the ledger holds it: every scope's record with its history."""
    records = checks.state_of(team_id, number)
    return {
        "records": [
            {
                "record": r,
                "scope": "every team number"
                if r.from_number == "*"
                else f"texts from {format_number(r.from_number)}",
                "account": r.account_id,
                "changes": list(r.changes.select_related("changed_by")),
            }
            for r in records
        ],
        "opted_out": any(r.opted_out for r in records),
    }


def _conversations(team, numbers: list[str]):
    if not numbers:
        return []
    match = Q(contact_key__in=numbers)
    for number in numbers:
        match |= Q(is_group=True, contact_key__contains=number)
    return list(
        Conversation.objects.filter(team=team)
        .filter(match)
        .order_by("-last_message_at", "-id")[:20]
    )


def _sent(team, numbers: list[str]):
    if not numbers:
        return []
    found = (
        OutboundMessage.objects.filter(team=team, recipients__phone_number__in=numbers)
        .distinct()
        .order_by("-created_at", "-id")[:20]
    )
    return list(found.prefetch_related("recipients"))


@login_required
@never_cache
@require_GET
def contact_detail(request, pk):
    membership = get_team_for_user(request)
    team = membership.team
    contact = _contact(membership, pk)
    numbers = list(contact.numbers.all())
    plain = [n.number for n in numbers]
    return render(
        request,
        "contacts/detail.html",
        {
            "team": team,
            "contact": contact,
            "numbers": [
                {"number": n, "shown": format_number(n.number), **_consent(team.pk, n.number)}
                for n in numbers
            ],
            "tags": list(contact.tags.order_by("name")),
            "custom_fields": sorted((contact.custom_fields or {}).items()),
            "conversations": [
                {
                    "conversation": c,
                    "with": ", ".join(format_number(n) for n in c.contact_numbers),
                    "team_number": format_number(c.team_number),
                }
                for c in _conversations(team, plain)
            ],
            "sent": [
                {
                    "message": m,
                    "to": ", ".join(
                        format_number(r.phone_number)
                        for r in m.recipients.all()
                        if r.phone_number in plain
                    ),
                }
                for m in _sent(team, plain)
            ],
            "can_edit": membership.can(Role.SENDER),
            "can_delete": membership.can(Role.ADMIN),
        },
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def contact_delete(request, pk):
    membership = get_team_for_user(request)
    contact = _contact(membership, pk)
    membership = get_rw_team_for_user(request, role=Role.ADMIN)
    if request.method == "POST":
        name = contact.display_name
        book.delete(contact)
        messages.success(request, f"{name} deleted. Their conversations and messages stay.")
        return HttpResponseRedirect(reverse("contacts"))
    return render(request, "contacts/delete.html", {"team": membership.team, "contact": contact})


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def contact_merge(request, pk):
    membership = get_team_for_user(request)
    contact = _contact(membership, pk)
    membership = get_rw_team_for_user(request, role=Role.SENDER)
    if request.method == "POST":
        raw = request.POST.get("other") or ""
        if not raw.isascii() or not raw.isdigit():
            raise Http404
        other = _contact(membership, int(raw))
        try:
            kept = book.merge(contact, other)
        except book.ContactRefused as refused:
            messages.error(request, str(refused))
            return HttpResponseRedirect(reverse("contact_merge", args=[contact.pk]))
        messages.success(request, f"Merged {other.display_name} into {contact.display_name}.")
        for sentence in kept:
            messages.info(request, sentence)
        return HttpResponseRedirect(reverse("contact_detail", args=[contact.pk]))
    search = (request.GET.get("q") or "").replace("\x00", "")[: book.MAX_SEARCH_LENGTH]
    candidates = []
    if search:
        candidates = [
            c for c in book.contacts(membership.team, search=search)[:20] if c.pk != contact.pk
        ]
    return render(
        request,
        "contacts/merge.html",
        {
            "team": membership.team,
            "contact": contact,
            "search": search,
            "candidates": [
                {"contact": c, "numbers": [format_number(n.number) for n in c.numbers.all()]}
                for c in candidates
            ],
        },
    )


@never_cache
@require_GET
def contact_search(request):
    """`?q=`: tags and contacts' numbers for the compose page's recipient field (JSON)."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Your session has ended; sign in again."}, status=401)
    membership = get_team_for_user(request)
    term = (request.GET.get("q") or "").replace("\x00", "")
    return JsonResponse(
        {"results": [m.as_json() for m in book.suggestions(membership.team_id, term)]}
    )


@login_required
@require_GET
def contact_export(request):
    membership = get_rw_team_for_user(request, role=Role.SENDER)
    audit.record(AuditAction.CONTACTS_EXPORTED, team=membership.team)
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    response = StreamingHttpResponse(
        exporting.export_rows(membership.team), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="contacts-{stamp}.csv"'
    return response
