"""Who the token belongs to: account, extension and the extension's phone numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ApiError, invalid_parameter, not_found
from .paging import page_params, paginate
from .state import Extension, PhoneNumber
from .wire import Request, Response

if TYPE_CHECKING:
    from .emulator import Emulator


def check_path_owner(emu: Emulator, req: Request) -> None:
    """``{accountId}``/``{extensionId}`` in the path must be ``~`` or the token's own ids.

    Another extension of the same account: 403 CMN-404. Anything else: 404 CMN-102.
    """
    auth = req.auth
    if auth is None:
        raise ApiError(401, "OAU-123", "Invalid Authorization header value: (missing)")
    account = req.params.get("account")
    if account is not None and account not in ("~", auth.account.id):
        raise not_found("accountId")
    extension = req.params.get("extension")
    if extension is None or extension in ("~", str(auth.extension.id)):
        return
    if extension.isdigit():
        other = emu.world.extensions.get(int(extension))
        if other is not None and other.account_id == auth.account.id:
            raise ApiError(403, "CMN-404", "Attempt to access another extension")
    raise not_found("extensionId")


def account_uri(emu: Emulator, account_id: str) -> str:
    return f"{emu.base_url}/restapi/v1.0/account/{account_id}"


def extension_uri(emu: Emulator, extension: Extension) -> str:
    return f"{account_uri(emu, extension.account_id)}/extension/{extension.id}"


def extension_json(emu: Emulator, extension: Extension) -> dict[str, Any]:
    account = emu.world.accounts[extension.account_id]
    return {
        "uri": extension_uri(emu, extension),
        "id": extension.id,
        "extensionNumber": extension.extension_number,
        "name": extension.name,
        "type": extension.type,
        "status": extension.status,
        "contact": {
            "firstName": extension.first_name,
            "lastName": extension.last_name,
            "company": account.company,
            "email": extension.email,
        },
        "account": {"id": account.id, "uri": account_uri(emu, account.id)},
        "permissions": {"admin": {"enabled": False}, "internationalCalling": {"enabled": False}},
        "regionalSettings": {
            "homeCountry": {"id": "1", "isoCode": "US", "name": "United States"},
            "timezone": {"id": "58", "name": "US/Pacific"},
            "language": {"id": "1033", "localeCode": "en-US", "name": "English (United States)"},
        },
    }


def phone_number_json(emu: Emulator, extension: Extension, number: PhoneNumber) -> dict[str, Any]:
    record: dict[str, Any] = {
        "uri": f"{extension_uri(emu, extension)}/phone-number/{number.id}",
        "id": number.id,
        "phoneNumber": number.phone_number,
        "type": number.type,
        "usageType": number.usage_type,
        "paymentType": number.payment_type,
        "features": list(number.features),
        "status": number.status,
        "primary": number.primary,
        "country": {"id": "1", "isoCode": "US", "name": "United States"},
    }
    if number.label is not None:
        record["label"] = number.label
    if number.location is not None:
        record["location"] = number.location
    return record


def handle_extension(emu: Emulator, req: Request) -> Response:
    check_path_owner(emu, req)
    assert req.auth is not None
    return Response.json(200, extension_json(emu, req.auth.extension))


def handle_account(emu: Emulator, req: Request) -> Response:
    check_path_owner(emu, req)
    assert req.auth is not None
    account = req.auth.account
    body = {
        "uri": account_uri(emu, account.id),
        "id": int(account.id),
        "mainNumber": account.main_number,
        "status": "Confirmed",
        "serviceInfo": {
            "uri": f"{account_uri(emu, account.id)}/service-info",
            "brand": {"id": "1210", "name": "RingCentral"},
        },
        "setupWizardState": "Completed",
    }
    return Response.json(200, body)


def handle_phone_numbers(emu: Emulator, req: Request) -> Response:
    check_path_owner(emu, req)
    assert req.auth is not None
    extension = req.auth.extension
    page, per_page = page_params(req)
    usage_types = req.query.get("usageType")
    status = req.query_one("status")
    if status is not None and status not in (
        "Normal",
        "Pending",
        "PortedIn",
        "Temporary",
        "Unknown",
    ):
        raise invalid_parameter("status")
    numbers = [
        n
        for n in extension.numbers
        if (not usage_types or n.usage_type in usage_types)
        and (status is None or n.status == status)
    ]
    base = f"{extension_uri(emu, extension)}/phone-number"
    chunk, paging, navigation = paginate(req, base, numbers, page, per_page)
    body = {
        "uri": base,
        "records": [phone_number_json(emu, extension, n) for n in chunk],
        "paging": paging,
        "navigation": navigation,
    }
    return Response.json(200, body)
