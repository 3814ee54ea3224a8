"""Who the token belongs to: extension, account, phone numbers (with paging)."""

from __future__ import annotations

from .helpers import LOCAL_MMS, NUMBERS, TOLL_FREE, error_code


def test_extension_info_describes_the_tokens_user(api, ext):
    response = api.get("/restapi/v1.0/account/~/extension/~")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == ext.id
    assert body["extensionNumber"] == ext.extension_number
    assert body["name"] == "Ada Lovelace"
    assert body["contact"]["email"] == "ada@example.com"
    assert body["contact"]["firstName"] == "Ada"
    assert body["contact"]["lastName"] == "Lovelace"
    assert body["account"]["id"] == ext.account_id
    assert body["account"]["uri"].endswith(f"/restapi/v1.0/account/{ext.account_id}")
    assert body["status"] == "Enabled"
    assert body["type"] == "User"


def test_account_info_has_the_numeric_id_and_main_number(api, ext):
    body = api.get("/restapi/v1.0/account/~").json()
    assert body["id"] == int(ext.account_id)
    assert body["mainNumber"] == LOCAL_MMS
    assert body["status"] == "Confirmed"


def test_real_ids_work_in_paths_like_the_tilde(api, ext):
    path = f"/restapi/v1.0/account/{ext.account_id}/extension/{ext.id}"
    assert api.get(path).json()["id"] == ext.id
    assert api.get(f"/restapi/v1.0/account/{ext.account_id}").status_code == 200


def test_another_extension_of_the_account_is_403_cmn_404(api, ext, other_ext):
    response = api.get(f"/restapi/v1.0/account/~/extension/{other_ext.id}")
    assert response.status_code == 403
    assert error_code(response) == "CMN-404"


def test_an_unknown_account_is_404(api, ext):
    response = api.get("/restapi/v1.0/account/999/extension/~")
    assert response.status_code == 404
    assert error_code(response) == "CMN-102"


def test_phone_numbers_list_every_field_the_portal_reads(api, ext):
    body = api.get("/restapi/v1.0/account/~/extension/~/phone-number").json()
    records = body["records"]
    assert [r["phoneNumber"] for r in records] == [n["phone_number"] for n in NUMBERS]
    main = records[0]
    assert isinstance(main["id"], int)
    assert main["type"] == "VoiceFax"
    assert main["usageType"] == "DirectNumber"
    assert main["paymentType"] == "Local"
    assert main["features"] == ["SmsSender", "MmsSender", "CallerId"]
    assert main["label"] == "Main line"
    assert main["status"] == "Normal"
    assert main["primary"] is True
    toll_free = next(r for r in records if r["phoneNumber"] == TOLL_FREE)
    assert toll_free["paymentType"] == "TollFree"
    assert "MmsSender" not in toll_free["features"]
    assert body["paging"]["totalElements"] == len(NUMBERS)


def test_phone_numbers_are_paged_with_navigation(api, ext):
    first = api.get("/restapi/v1.0/account/~/extension/~/phone-number?perPage=4").json()
    assert len(first["records"]) == 4
    assert first["paging"] == {
        "page": 1,
        "perPage": 4,
        "totalPages": 2,
        "totalElements": 6,
        "pageStart": 0,
        "pageEnd": 3,
    }
    assert "nextPage" in first["navigation"] and "previousPage" not in first["navigation"]
    second = api.get(first["navigation"]["nextPage"]["uri"].replace(api.base_url, "")).json()
    assert [r["phoneNumber"] for r in second["records"]] == [n["phone_number"] for n in NUMBERS[4:]]
    assert second["paging"]["page"] == 2
    assert "previousPage" in second["navigation"]


def test_a_page_beyond_the_end_is_empty(api, ext):
    body = api.get("/restapi/v1.0/account/~/extension/~/phone-number?page=9").json()
    assert body["records"] == []
    assert "pageStart" not in body["paging"]


def test_a_non_positive_page_size_is_rejected(api, ext):
    response = api.get("/restapi/v1.0/account/~/extension/~/phone-number?perPage=0")
    assert response.status_code == 400
    assert error_code(response) == "CMN-101"


def test_an_unknown_path_is_404_cmn_120(api, ext):
    response = api.get("/restapi/v1.0/account/~/extension/~/nothing-here")
    assert response.status_code == 404
    assert error_code(response) == "CMN-120"
