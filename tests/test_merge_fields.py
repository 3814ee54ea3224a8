"""Merge fields and SMS segments: pure functions, shown on texts a team would write."""

from types import SimpleNamespace

import pytest

from messaging.message_templates import merge, segments


def contact(**fields):
    base = {"name": "", "company": "", "email": "", "custom_fields": {}}
    base.update(fields)
    return SimpleNamespace(**base)


def test_a_contact_fills_first_name_company_and_a_custom_field():
    values = merge.contact_values(
        contact(
            name="Ada King Lovelace",
            company="Analytical",
            custom_fields={"Appointment Time": "3 pm"},
        ),
        "+16505550100",
    )
    text = "Hi {first_name} of {Company}: see you at {appointment_time} ({phone})."
    result = merge.merge(text, values)
    assert result.text == "Hi Ada of Analytical: see you at 3 pm (+16505550100)."
    assert result.missing == ()
    assert values["last_name"] == "King Lovelace"


def test_a_missing_field_is_listed_and_takes_the_fallback_or_nothing():
    values = merge.contact_values(contact(name=""), "+16505550100")
    expected = merge.MergeResult("Hi there!", ("first_name",))
    assert merge.merge("Hi {first_name}!", values, fallback="there") == expected
    assert merge.merge("Hi {first_name}{company}!", values).missing == ("first_name", "company")
    assert merge.merge("Hi {first_name}!", values).text == "Hi !"


def test_double_braces_are_literal_and_a_lone_brace_is_refused():
    assert merge.merge("{{not a field}} {name}", {"name": "Bo"}).text == "{not a field} Bo"
    with pytest.raises(merge.TemplateError, match="brace"):
        merge.fields_in("Price: {amount")
    with pytest.raises(merge.TemplateError, match="not a merge field"):
        merge.fields_in("Hi {first name!}")


def test_unknown_fields_are_named_in_order_once():
    text = "Hi {first_name}, your {pet} and {pet_name} and {pet}"
    assert merge.fields_in(text) == ["first_name", "pet", "pet_name"]
    assert merge.unknown_fields(text, merge.CONTACT_FIELDS) == ["pet", "pet_name"]


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("First Name", "first_name"),
        (" E-mail ", "e_mail"),
        ("2nd visit", "f_2nd_visit"),
        ("Café", "cafe"),
    ],
)
def test_column_headings_become_field_names(label, name):
    assert merge.field_name(label) == name


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        ("", segments.GSM7, 0, 0),
        ("a" * 160, segments.GSM7, 160, 1),
        ("a" * 161, segments.GSM7, 161, 2),
        ("a" * 306, segments.GSM7, 306, 2),
        ("a" * 307, segments.GSM7, 307, 3),
        ("€" * 80, segments.GSM7, 160, 1),  # extension characters cost two units
        ("€" * 81, segments.GSM7, 162, 2),
        ("é" * 70 + "ł", segments.UCS2, 71, 2),  # one character outside GSM-7 makes it all UCS-2
        ("😀" * 35, segments.UCS2, 70, 1),  # an emoji is two UTF-16 units
        ("😀" * 36, segments.UCS2, 72, 2),
        ("’" * 134, segments.UCS2, 134, 2),
        ("’" * 135, segments.UCS2, 135, 3),
    ],
)
def test_segments_follow_the_encoding(text, encoding, units, parts):
    length = segments.measure(text)
    assert (length.encoding, length.encoded_units, length.segments) == (encoding, units, parts)
    assert length.units == len(text.encode("utf-16-le")) // 2
