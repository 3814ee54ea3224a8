"""The contact form: numbers one per line ("(650) 555-0100, mobile"), tags separated by
commas, custom fields one per line ("key: value")."""

from __future__ import annotations

import zoneinfo

from django import forms

from messaging.contacts import book
from messaging.contacts.numbers import BadNumber, to_e164
from messaging.core.phones import format_number

MAX_NUMBERS = 20
MAX_CUSTOM_FIELDS = 50


def time_zone_problem(value: str) -> str | None:
    if value and value not in zoneinfo.available_timezones():
        return f"“{value[:60]}” is not a time zone; use a name like America/New_York."
    return None


def parse_custom_fields(text: str) -> tuple[dict[str, str], list[str]]:
    fields, problems = {}, []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key = " ".join(key.split())[:50]
        if not sep or not key:
            problems.append(f"“{line.strip()[:40]}”: write each field as “key: value”.")
            continue
        fields[key] = value.strip()[:500]
    if len(fields) > MAX_CUSTOM_FIELDS:
        problems.append(f"At most {MAX_CUSTOM_FIELDS} custom fields.")
    return fields, problems


class ContactForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    company = forms.CharField(max_length=200, required=False)
    numbers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line; a label may follow a comma: “(650) 555-0100, mobile”.",
    )
    email = forms.EmailField(max_length=254, required=False)
    tags = forms.CharField(
        max_length=500, required=False, help_text="Separated by commas: “patients, north”."
    )
    time_zone = forms.CharField(
        max_length=64, required=False, help_text="Optional, e.g. America/Chicago."
    )
    custom_fields = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Custom fields",
        help_text="One per line: “key: value”. Campaigns can put them into texts.",
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    @classmethod
    def initial_for(cls, contact) -> dict:
        return {
            "name": contact.name,
            "company": contact.company,
            "email": contact.email,
            "time_zone": contact.time_zone,
            "notes": contact.notes,
            "numbers": "\n".join(
                format_number(n.number) + (f", {n.label}" if n.label else "")
                for n in contact.numbers.all()
            ),
            "tags": ", ".join(t.name for t in contact.tags.all()),
            "custom_fields": "\n".join(f"{k}: {v}" for k, v in contact.custom_fields.items()),
        }

    def clean(self):
        cleaned = super().clean()
        for name in ("name", "company", "notes", "tags", "custom_fields", "numbers"):
            if "\x00" in (cleaned.get(name) or ""):
                self.add_error(name, "Remove the NUL character.")
        if not (cleaned.get("name") or "").strip() and not (cleaned.get("company") or "").strip():
            self.add_error("name", "Give a name or a company.")
        numbers, seen = [], set()
        for line in (cleaned.get("numbers") or "").splitlines():
            if not line.strip():
                continue
            typed, _, label = line.partition(",")
            try:
                number = to_e164(typed)
            except BadNumber as bad:
                self.add_error("numbers", str(bad))
                continue
            if number not in seen:
                seen.add(number)
                numbers.append((number, " ".join(label.split())[:40]))
        if len(numbers) > MAX_NUMBERS:
            self.add_error("numbers", f"At most {MAX_NUMBERS} numbers per contact.")
        cleaned["number_list"] = numbers
        problem = time_zone_problem((cleaned.get("time_zone") or "").strip())
        if problem:
            self.add_error("time_zone", problem)
        custom, problems = parse_custom_fields(cleaned.get("custom_fields") or "")
        for problem in problems:
            self.add_error("custom_fields", problem)
        cleaned["custom_dict"] = custom
        cleaned["tag_names"] = book.split_tags(cleaned.get("tags") or "")
        return cleaned

    def contact_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"].strip(),
            "company": data["company"].strip(),
            "email": data["email"],
            "time_zone": data["time_zone"].strip(),
            "notes": data["notes"],
            "custom_fields": data["custom_dict"],
        }


class MergeForm(forms.Form):
    other = forms.IntegerField(widget=forms.HiddenInput)
