"""The template editor's form: every check of a template's text, name and policy."""

from django import forms

from messaging.message_templates import library
from messaging.message_templates.merge import TemplateError, fields_in
from messaging.models import MessageTemplate, MissingPolicy
from messaging.ringcentral import limits

PERSONAL, TEAM = "personal", "team"


class TemplateForm(forms.ModelForm):
    scope = forms.ChoiceField(
        label="Who sees it",
        choices=((PERSONAL, "Only me"), (TEAM, "Everyone in the team (team admins change it)")),
        widget=forms.RadioSelect,
        initial=PERSONAL,
    )

    class Meta:
        model = MessageTemplate
        fields = ["name", "text", "missing_policy", "fallback"]
        labels = {
            "text": "Message",
            "missing_policy": "When a recipient has no value for a field",
            "fallback": "Fallback text",
        }
        help_texts = {
            "text": "Merge fields in braces, such as {first_name} or {company}, are filled in for "
            "each recipient. Write {{ or }} for a brace itself.",
            "fallback": "Put in place of a field that has no value (for example “there”). "
            "Leave it empty to leave the field out.",
        }
        widgets = {
            "text": forms.Textarea(attrs={"rows": 6}),
            "missing_policy": forms.RadioSelect,
        }

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        self.membership = membership
        self.fields["name"].max_length = 100
        if self.instance.pk:
            # The scope of a template does not change; it is a different template.
            del self.fields["scope"]
        elif not library.may_create(membership, personal=False):
            self.fields["scope"].choices = [(PERSONAL, "Only me")]

    def clean_name(self):
        name = (self.cleaned_data.get("name") or "").strip()
        if not name:
            raise forms.ValidationError("Give the template a name.")
        return name

    def clean_text(self):
        text = (self.cleaned_data.get("text") or "").replace("\r\n", "\n").replace("\r", "\n")
        if "\0" in text:
            raise forms.ValidationError("The text contains characters that cannot be sent.")
        try:
            fields_in(text)
            unknown = library.unknown_field_message(self.membership.team, text)
        except TemplateError as error:
            raise forms.ValidationError(str(error)) from None
        if unknown:
            raise forms.ValidationError(unknown)
        problems = [v.message for v in limits.check_text(text)]
        if problems:
            raise forms.ValidationError(problems)
        return text

    def clean_fallback(self):
        return (self.cleaned_data.get("fallback") or "").strip()

    def clean(self):
        cleaned = super().clean()
        scope = cleaned.get("scope")
        if scope == TEAM and not library.may_create(self.membership, personal=False):
            self.add_error("scope", "Only team admins make team templates.")
        if cleaned.get("missing_policy") not in MissingPolicy.values:
            self.add_error("missing_policy", "Choose what happens when a field has no value.")
        return cleaned

    def save(self, commit=True):
        template = super().save(commit=False)
        if not template.pk:
            template.team = self.membership.team
            template.created_by = self.membership.user
            personal = self.cleaned_data.get("scope") != TEAM
            template.owner = self.membership.user if personal else None
        if commit:
            template.save()
        return template
