"""The verification admin: a read-only list of runs, each linked to its Temporal history."""

import re

import pytest

from customers.models import Customer
from verification.admin import verification_temporal_url
from verification.models import Verification

CHANGELIST = "/admin/verification/verification/"


@pytest.fixture
def run(db) -> Verification:
    customer = Customer.objects.create(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone_number="+447700900123",
    )
    return Verification.objects.create(
        customer=customer,
        workflow_id=f"verify-phone-{customer.pk}",
        run_id="0197-run",
        status="failed",
    )


def test_list_shows_status_timestamps_and_the_temporal_link(admin_client, run):
    html = admin_client.get(CHANGELIST).content.decode()

    assert run.workflow_id in html
    assert '<td class="field-status">Failed</td>' in html
    assert f'href="{verification_temporal_url(run)}"' in html
    assert "Started at" in html and "Finished at" in html


def test_runs_cannot_be_added_changed_or_deleted(admin_client, run):
    page = admin_client.get(f"{CHANGELIST}{run.pk}/change/")

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (
        admin_client.post(f"{CHANGELIST}{run.pk}/change/", {"status": "verified"}).status_code
        == 403
    )
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.get(f"{CHANGELIST}{run.pk}/delete/").status_code == 403
    run.refresh_from_db()
    assert run.status == "failed"


def test_search_finds_runs_by_customer_phone_and_workflow_id(admin_client, run):
    for term in ("+447700900123", "Lovelace", run.workflow_id):
        assert run.workflow_id in admin_client.get(CHANGELIST, {"q": term}).content.decode()
    assert run.workflow_id not in admin_client.get(CHANGELIST, {"q": "nobody"}).content.decode()


def test_temporal_url_escapes_each_part(settings, run):
    settings.TEMPORAL_UI_URL = "https://ui.example/"
    settings.TEMPORAL_NAMESPACE = "team a"
    run.workflow_id = "verify-phone-x/y"

    assert verification_temporal_url(run) == (
        "https://ui.example/namespaces/team%20a/workflows/verify-phone-x%2Fy/0197-run/history"
    )


def test_list_cuts_a_long_customer_name_short(admin_client, run):
    run.customer.first_name = "B" * 100
    run.customer.save()

    html = admin_client.get(CHANGELIST).content.decode()

    cell = re.search(r'<td class="field-customer_display">(.*?)</td>', html).group(1)
    assert re.sub(r"<[^>]+>", "", cell) == f"{'B' * 39}… (+44 •••• ••0123)"
    assert f'title="{"B" * 100} Lovelace"' in cell
