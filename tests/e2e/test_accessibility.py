"""Accessibility checks of our own, run in Chromium on every main page.

No third-party checker (nothing to vendor, no npm): a small script measures in the page what
we promise —

- the page has a language and exactly one `h1`;
- every form control, button and link has an accessible name (label, aria-label,
  aria-labelledby, its text or an image's alt), and every image has an `alt`;
- text has a contrast of at least 4.5:1 with the background it is drawn on (3:1 for large
  text, as WCAG 2 AA allows), from the computed colours of each text's element and of the
  ancestors that paint behind it;
- each control reached with Tab looks different while focused (outline or shadow), and an
  outline stands out from what surrounds it by at least 3:1 (WCAG 1.4.11);
- the compose page can be filled in and sent with the keyboard alone, in a sensible order.
"""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from messaging.models import OutboundMessage
from messaging.outbox import states as outbox
from messaging.ringcentral import errors
from tests.factories import make_connection, make_message, make_number
from tests.test_compose import sent  # noqa: F401 - fixture: records the enqueue, sends nothing

pytestmark = pytest.mark.e2e

COLOURS = """
  const parse = (value) => {
    const found = value.match(/rgba?\\(([^)]+)\\)/);
    if (!found) return null;
    const parts = found[1].split(/[\\s,\\/]+/).filter(Boolean).map(parseFloat);
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const luminance = (rgb) => {
    const [r, g, b] = rgb.slice(0, 3).map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  // The colour painted behind `el`: its own and its ancestors' backgrounds, composited from
  // the first opaque one upwards; the canvas is white. null when an image is involved.
  const backgroundOf = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.backgroundImage && style.backgroundImage !== "none") return null;
      const colour = parse(style.backgroundColor);
      if (colour && colour[3] > 0) {
        layers.push(colour);
        if (colour[3] >= 1) break;
      }
    }
    let result = [255, 255, 255, 1];
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
"""

AUDIT = (
    """
() => {
  const problems = [];
  const describe = (el) => {
    let text = el.tagName.toLowerCase();
    if (el.id) text += "#" + el.id;
    else if (el.getAttribute("name")) text += "[name=" + el.getAttribute("name") + "]";
    const words = (el.textContent || el.getAttribute("value") || "").trim().slice(0, 40);
    return words ? text + " \\"" + words.replace(/\\s+/g, " ") + "\\"" : text;
  };

  // --- names -----------------------------------------------------------------------------
  const textOf = (node) => {
    let out = "";
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) out += child.textContent;
      else if (child.nodeType === Node.ELEMENT_NODE) {
        if (child.getAttribute("aria-hidden") === "true") continue;
        if (child.tagName === "IMG") out += " " + (child.getAttribute("alt") || "") + " ";
        else out += " " + textOf(child) + " ";
      }
    }
    return out;
  };
  const byIds = (ids) => ids.split(/\\s+/).map((id) => {
    const target = document.getElementById(id);
    return target ? textOf(target) : "";
  }).join(" ");
  const nameOf = (el) => {
    const labelledby = el.getAttribute("aria-labelledby");
    if (labelledby && byIds(labelledby).trim()) return byIds(labelledby).trim();
    const label = (el.getAttribute("aria-label") || "").trim();
    if (label) return label;
    if (el.labels && el.labels.length) {
      const text = Array.from(el.labels).map(textOf).join(" ").trim();
      if (text) return text;
    }
    if (el.tagName === "INPUT" && ["submit", "button", "reset"].includes(el.type)) {
      return (el.value || "").trim();
    }
    if (el.tagName === "A" || el.tagName === "BUTTON" || el.tagName === "SUMMARY") {
      const text = textOf(el).trim();
      if (text) return text;
    }
    return (el.getAttribute("title") || "").trim();
  };

  const html = document.documentElement;
  if (!(html.getAttribute("lang") || "").trim()) problems.push("the page has no lang");
  const headings = document.querySelectorAll("h1");
  if (headings.length !== 1) problems.push(headings.length + " h1 elements, not one");

  const controls = document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button, a[href], summary, [role=button]"
  );
  for (const el of controls) {
    if (!nameOf(el)) problems.push("no accessible name: " + describe(el));
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("image without alt: " + img.src);
  }
  for (const svg of document.querySelectorAll("svg")) {
    const hidden = svg.closest("[aria-hidden=true]");
    const named = svg.getAttribute("aria-label") || svg.getAttribute("aria-labelledby")
      || svg.querySelector("title");
    if (!hidden && !named) problems.push("svg without a name or aria-hidden");
  }

  // --- contrast ----------------------------------------------------------------------------
"""
    + COLOURS
    + """
  let measuredTexts = 0;
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const el = walker.currentNode.parentElement;
    if (!text || !el || seen.has(el)) continue;
    seen.add(el);
    if (el.closest("script, style, template, noscript, option, [hidden]")) continue;
    if (!el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;  // visually hidden, for screen readers
    if (el.closest(":disabled")) continue;  // inactive controls are exempt
    const style = getComputedStyle(el);
    const background = backgroundOf(el);
    const colour = parse(style.color);
    if (!background || !colour) continue;
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight, 10) >= 700);
    const needed = large ? 3 : 4.5;
    const measured = ratio(over(colour, background), background);
    measuredTexts += 1;
    if (measured < needed) {
      problems.push("contrast " + measured.toFixed(2) + ":1 (needs " + needed + "): "
        + describe(el) + " " + style.color + " on rgb(" + background.slice(0, 3).join(",") + ")");
    }
  }
  return { problems, controls: controls.length, texts: measuredTexts };
}
"""
)

FOCUS_STYLE = """
(el) => {
  const s = getComputedStyle(el);
  return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join(" | ");
}
"""

TABBABLE = (
    "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), "
    "select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])"
)


def audit(page) -> list[str]:
    """The page's problems; the audit must have had controls and text to look at."""
    result = page.evaluate(AUDIT)
    assert result["controls"] > 0 and result["texts"] > 3, result
    return result["problems"]


FOCUSED = (
    """
() => {
"""
    + COLOURS
    + """
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  // An outline is drawn on whatever lies around the element: it needs 3:1 against that
  // (WCAG 1.4.11, non-text contrast).
  let contrast = null;
  const colour = parse(s.outlineColor);
  if (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0 && colour) {
    const around = backgroundOf(el.parentElement || el);
    if (around) contrast = ratio(over(colour, around), around);
  }
  return {
    key: el.dataset.a11yKey || "?",
    style: [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join(" | "),
    contrast: contrast,
    html: el.outerHTML.slice(0, 160),
  };
}
"""
)


def focus_problems(page) -> list[str]:
    """Tab through the page: every element that gets focus must look different from its
    unfocused self, and an outline must stand out from what surrounds it."""
    unfocused = page.evaluate(
        f"""() => {{
            if (document.activeElement) document.activeElement.blur();
            const styles = {{}};
            document.querySelectorAll({TABBABLE!r}).forEach((el, index) => {{
                el.dataset.a11yKey = String(index);
                styles[index] = ({FOCUS_STYLE})(el);
            }});
            return styles;
        }}"""
    )
    problems, visited = [], []
    for _ in range(len(unfocused) + 5):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None or focused["key"] in visited:
            break  # back to the start: every stop has been seen
        visited.append(focused["key"])
        if unfocused.get(focused["key"]) == focused["style"]:
            problems.append(f"no visible focus: {focused['html']}")
        elif focused["contrast"] is not None and focused["contrast"] < 3:
            problems.append(
                f"focus outline contrast {focused['contrast']:.2f}:1 (needs 3): {focused['html']}"
            )
    if len(visited) < 3:
        problems.append(f"Tab reaches almost nothing: {visited}")
    return problems


@pytest.fixture
def office(alice, team, journey_media):
    """Acme with a shared RingCentral link, two numbers, and a delivered and a failed message
    in its outbox."""
    connection = make_connection(team, alice, shared=True, extension_name="Front desk")
    main = make_number(connection, "+16505550100", label="Main line")
    make_number(connection, "+16505550101", mms=False, label="Text only")
    delivered = make_message(main, alice, text="Your order is ready")
    message, attempt = outbox.claim(delivered.pk)
    outbox.record_success(message, attempt, outbox.Accepted(rc_message_id="70001"))
    outbox.apply_delivery_report(
        message, [outbox.DeliveryReport("+16505550111", "Delivered")], at=timezone.now()
    )
    failed = make_message(main, alice, to=("+16505550112",), text="See you at 3")
    message, attempt = outbox.claim(failed.pk)
    blocked = errors.ERROR_TABLE[(400, "MSG-243")]
    outbox.record_failure(
        message,
        attempt,
        outbox.Failure(reason=blocked.reason, fix=blocked.fix, code="MSG-243", http_status=400),
    )
    return {"delivered": delivered, "failed": failed}


def check(page, path: str):
    page.goto(path)
    expect(page.locator("h1")).to_have_count(1)
    problems = audit(page) + focus_problems(page)
    assert not problems, f"{path}:\n" + "\n".join(problems)


def test_pages_for_visitors_pass_the_checks(page):
    for path in ("/", "/accounts/login/", "/accounts/signup/"):
        check(page, path)


def test_pages_for_members_pass_the_checks(page, sign_in, alice, team, office):
    from messaging.campaigns import creation, running
    from messaging.models import Contact, ContactNumber, MessageStatus, MessageTemplate, Tag
    from tests.factories import message_in

    contact = Contact.objects.create(team=team, name="Ann Lee", custom_fields={"Plan": "gold"})
    ContactNumber.objects.create(contact=contact, team=team, number="+16505550111")
    template = MessageTemplate.objects.create(team=team, name="Reminder", text="Hi {first_name}")
    scheduled = message_in(office["failed"].sender_number, alice, MessageStatus.SCHEDULED)
    contact.tags.add(Tag.objects.create(team=team, name="patients"))
    ask = creation.Request(
        name="Reminders",
        sender_ids=[str(office["failed"].sender_number_id)],
        text="Hello {first_name}",
        source="tag",
        tag="patients",
    )
    draft = creation.create(team.memberships.get(user=alice), ask)
    started = creation.create(team.memberships.get(user=alice), ask)
    running.start(started)
    sign_in(page, alice, team)
    for path in (
        "/dashboard/",
        "/messages/compose/",
        "/messages/",
        f"/messages/{office['failed'].pk}/",
        f"/messages/{office['delivered'].pk}/",
        "/team/",
        "/ringcentral/",
        "/consent/",
        "/consent/settings/",
        "/contacts/",
        "/contacts/new/",
        f"/contacts/{contact.pk}/",
        "/contacts/import/",
        "/templates/",
        "/templates/new/",
        f"/templates/{template.pk}/",
        f"/messages/{scheduled.pk}/",
        f"/teams/{team.slug}/api-keys/",
        "/campaigns/",
        "/campaigns/new/",
        f"/campaigns/new/?template={template.pk}",
        f"/campaigns/{draft.pk}/",
        f"/campaigns/{draft.pk}/edit/?template={template.pk}",
        f"/campaigns/{started.pk}/",
    ):
        check(page, path)


def test_the_checks_find_what_they_look_for(page, sign_in, alice, team):
    """The audit is not blind: a page with each fault gets each complaint."""
    sign_in(page, alice, team)
    page.goto("/dashboard/")
    page.evaluate(
        """() => {
            const main = document.querySelector("main");
            main.insertAdjacentHTML("beforeend",
              '<h1>Second</h1><input id="nameless"><img src="data:,">'
              + '<button id="empty"></button><p id="faint">Faint</p>');
            document.getElementById("faint").style.color = "#bbb";  // CSP forbids inline styles
            const plain = document.createElement("button");
            plain.textContent = "No focus ring";
            plain.style.outline = "none";
            const pale = document.createElement("button");
            pale.textContent = "Pale focus ring";
            pale.style.outlineColor = "#eeeeee";
            main.append(plain, pale);
        }"""
    )
    problems = "\n".join(audit(page) + focus_problems(page))
    assert "2 h1 elements" in problems
    assert "no accessible name: input#nameless" in problems
    assert "no accessible name: button#empty" in problems
    assert "image without alt" in problems
    assert re.search(r"contrast 1\.\d+:1 \(needs 4\.5\): p#faint", problems)
    assert re.search(r"no visible focus: <button [^>]*>No focus ring</button>", problems)
    assert re.search(r"focus outline contrast 1\.\d+:1 \(needs 3\): <button [^>]*>Pale", problems)


def test_compose_can_be_filled_in_and_sent_with_the_keyboard(
    page,
    sign_in,
    alice,
    team,
    office,
    sent,  # noqa: F811
):
    sign_in(page, alice, team)
    page.goto("/messages/compose/")
    expect(page.locator("#compose-form.js-enhanced")).to_be_visible()

    def tab_to(element_id: str, limit: int = 40) -> list[str]:
        """Press Tab until `element_id` has focus; return the ids passed on the way."""
        passed = []
        for _ in range(limit):
            page.keyboard.press("Tab")
            current = page.evaluate("document.activeElement.id")
            passed.append(current)
            if current == element_id:
                return passed
        raise AssertionError(f"Tab never reached #{element_id}; passed {passed}")

    # The form's controls come in reading order, top to bottom.
    order = tab_to("compose-submit")
    expected = ["id_sender", "id_to", "id_mode_0", "id_text", "id_attachments", "id_fit_images"]
    positions = [order.index(element_id) for element_id in expected]
    assert positions == sorted(positions), order
    assert order.index("compose-submit") > positions[-1]

    # Start again from the top and fill it in with keys only.
    page.goto("/messages/compose/")
    expect(page.locator("#compose-form.js-enhanced")).to_be_visible()
    tab_to("id_sender")
    # The page starts from the number last sent from; the keys could pick another.
    assert "Main line" in page.evaluate("document.activeElement.selectedOptions[0].textContent")
    tab_to("id_to")
    page.keyboard.type("(650) 555-0123")
    tab_to("id_text")
    page.keyboard.type("Typed without a mouse.")
    tab_to("id_fit_images")
    page.keyboard.press("Space")
    expect(page.get_by_label("Reduce photos to fit")).not_to_be_checked()
    page.keyboard.press("Space")
    expect(page.get_by_label("Reduce photos to fit")).to_be_checked()
    tab_to("compose-submit")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/messages/\d+/$"))
    expect(page.locator(".flash")).to_contain_text("Queued")
    message = OutboundMessage.objects.latest("pk")
    assert message.text == "Typed without a mouse."
    assert [r.phone_number for r in message.recipients.all()] == ["+16505550123"]
    assert sent == [message.pk]
