"""HTML for the authorize step: the sign-in/consent page and the error page.

The consent page stands in for RingCentral's login: it lists the emulated extensions and posts
the choice back to ``/restapi/oauth/authorize`` with a one-time ticket that holds the validated
authorize parameters.
"""

from __future__ import annotations

from html import escape

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1d2433}
.badge{display:inline-block;background:#fde68a;border-radius:4px;padding:2px 8px;font-size:.8rem}
fieldset{border:1px solid #cbd2dc;border-radius:6px;padding:1rem;margin:1rem 0}
label{display:block;padding:.35rem 0}
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.6rem;border-radius:6px;
border:1px solid #888}
button[value=approve]{background:#0a66c2;color:#fff;border-color:#0a66c2}
.error{background:#fee2e2;border:1px solid #f87171;border-radius:6px;padding:1rem}
code{background:#f1f5f9;padding:1px 4px}
"""

_CONSENT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - RingCentral emulator</title>
<style>{style}</style></head>
<body>
<p><span class="badge">RingCentral emulator</span></p>
<h1>Sign in to RingCentral</h1>
<p><strong>{app_name}</strong> would like to send SMS/MMS, read your messages, read your account
and phone numbers, and receive notifications for you.</p>
<form method="post" action="/restapi/oauth/authorize">
<input type="hidden" name="ticket" value="{ticket}">
<fieldset><legend>Log in as</legend>
{choices}
</fieldset>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>
"""

_CHOICE = """<label><input type="radio" name="extension_id" value="{id}"{checked}> {name}
(ext. {number}) &middot; {email} &middot; {company}</label>"""

_ERROR = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Authorization error - RingCentral emulator</title>
<style>{style}</style></head>
<body>
<p><span class="badge">RingCentral emulator</span></p>
<h1>Authorization failed</h1>
<div class="error"><p><code>{error}</code> <code>{code}</code></p><p>{description}</p></div>
</body></html>
"""


def consent_page(
    ticket: str, app_name: str, extensions: list[tuple[int, str, str, str, str]]
) -> str:
    """``extensions``: (id, name, extension number, email, company) in display order."""
    choices = "\n".join(
        _CHOICE.format(
            id=ext_id,
            name=escape(name),
            number=escape(number),
            email=escape(email),
            company=escape(company),
            checked=" checked" if index == 0 else "",
        )
        for index, (ext_id, name, number, email, company) in enumerate(extensions)
    )
    return _CONSENT.format(
        style=_STYLE, app_name=escape(app_name), ticket=escape(ticket), choices=choices
    )


def error_page(error: str, code: str, description: str) -> str:
    return _ERROR.format(
        style=_STYLE, error=escape(error), code=escape(code), description=escape(description)
    )
