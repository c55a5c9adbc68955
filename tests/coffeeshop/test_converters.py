"""Customer ids in paths match in either case, as `batchGet` takes them: API and pages alike."""

import uuid

import pytest
from django.urls import NoReverseMatch, resolve, reverse

CUSTOMER_ID = uuid.uuid4()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/customers/{id}",
        "/v1/customers/{id}:verify",
        "/v1/customers/{id}:resendCode",
        "/v1/customers/{id}/verification",
        "/customers/{id}/verify/",
        "/customers/{id}/verify/resend/",
        "/customers/{id}/verify/start-again/",
        "/customers/{id}/verified/",
        "/customers/{id}/not-verified/",
    ],
)
@pytest.mark.parametrize(
    "spelling", [str.lower, str.upper, str.title], ids=["lower", "upper", "mixed"]
)
def test_customer_id_in_a_path_matches_in_any_case_and_reaches_the_view_as_a_uuid(path, spelling):
    match = resolve(path.format(id=spelling(str(CUSTOMER_ID))))

    assert match.kwargs == {"customer_id": CUSTOMER_ID}


@pytest.mark.parametrize(
    "text",
    [
        "not-a-uuid",
        str(CUSTOMER_ID).replace("-", ""),
        f"{{{CUSTOMER_ID}}}",
        "g" * 8 + "-0000-0000-0000-" + "0" * 12,
    ],
)
def test_other_spellings_are_no_route(client, text):
    assert client.get(f"/v1/customers/{text}").status_code == 404


def test_reversed_urls_are_lowercase():
    assert reverse("verification:verify", kwargs={"customer_id": str(CUSTOMER_ID).upper()}) == (
        f"/customers/{CUSTOMER_ID}/verify/"
    )
    with pytest.raises(NoReverseMatch):
        reverse("verification:verify", kwargs={"customer_id": "nope"})
