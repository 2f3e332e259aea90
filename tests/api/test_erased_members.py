"""Right to be forgotten, as the data protection officer checks it: after an erasure the
database holds the customer's code and e-mail nowhere, also where the API kept its
answers to tills for their repeats."""

import io
import json

import pytest
from django.core.management import call_command
from kombu.exceptions import OperationalError as BrokerUnavailable

from api.tasks import forget_first_answers_task, prune_first_answers_task
from members.models import Member
from members.services import erase_member
from points.services import adjust_points
from rewards.models import Reward
from tests.api.conftest import client_for, new_id, post, recently

pytestmark = pytest.mark.django_db


def unreachable(*args):
    raise BrokerUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.mark.parametrize("queue", ["up", "out of reach", "lost"])
def test_an_erasure_leaves_the_customer_s_code_and_e_mail_nowhere_in_the_database(
    till, staff, on_commit, monkeypatch, queue
):
    """What the DPO meets: Lucía enrols in the app, buys at a till and redeems a coffee,
    then asks to be forgotten. Her member row and the admin's history forget her code
    (rules.md, Erasing a member), but the answers the API keeps 30 days for the tills'
    repeats (a purchase's, a redemption's) still name "M-LUCIA" and her summary: a
    dump of the database finds her code three weeks after she was erased."""
    # given: a member enrolled, buying and redeeming through the API; another customer
    api = client_for(till.secret)
    coffee = Reward.objects.create(name="Coffee", points_cost=100)
    for code in ["M-LUCIA", "M-OTHER"]:
        enrolled = post(api, "/api/v1/members", {"external_id": code, "email": f"{code}@ex.com"})
        bought = post(
            api,
            "/api/v1/transactions",
            {
                "external_id": new_id("P"),
                "member": code,
                "kind": "purchase",
                "amount": "300.00",
                "occurred_at": recently(),
            },
        )
        redeemed = post(
            api,
            "/api/v1/redemptions",
            {"external_id": new_id("R"), "member": code, "reward": coffee.pk},
        )
        assert (enrolled.status_code, bought.status_code, redeemed.status_code) == (201,) * 3

    # when: the customer is erased, and what the erasure leads to runs (a chunk of one
    # answer at a time, as in a table of millions)
    monkeypatch.setattr("api.services.PRUNE_CHUNK", 1)
    if queue == "out of reach":
        monkeypatch.setattr(forget_first_answers_task, "delay", unreachable)
    if queue == "lost":  # the web process killed after the commit, or the message lost
        monkeypatch.setattr(forget_first_answers_task, "delay", lambda *args: None)
    on_commit(lambda: erase_member(member=Member.objects.get(external_id="M-LUCIA"), by=staff))
    if queue == "lost":
        prune_first_answers_task.delay()  # the daily pruning

    # then: nothing in the database names her; the other customer is still there
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    rows = json.loads(dump.getvalue())

    def naming(code):
        return sorted({row["model"] for row in rows if code in json.dumps(row, ensure_ascii=False)})

    assert naming("M-LUCIA") == []
    assert {"members.member", "api.firstanswer"} <= set(naming("M-OTHER"))


def test_a_message_of_the_release_before_naming_the_codes_still_drops_their_answers():
    # given: an answer kept for a code, and the message the release before queued at
    # its erasure, which named the codes (no CodesToForget row: it wrote none)
    from api.models import FirstAnswer

    FirstAnswer.keep("P-OLD-1", {"member": "M-GONE", "points": 10})
    FirstAnswer.keep("P-OLD-2", {"member": "M-STAYS", "points": 10})

    # when: a worker of this release takes it
    forget_first_answers_task.delay(["M-GONE"])

    # then
    assert list(FirstAnswer.objects.values_list("external_id", flat=True)) == ["P-OLD-2"]


def test_an_erased_member_s_voucher_names_no_account_and_its_erased_code_finds_nothing(till, staff):
    """An audit found the way back: the voucher's code, sent to the CRM and held by the
    customer, named the account's ERASED- code, which opened the account's ledger and
    the reasons staff wrote there ("Goodwill: parcel lost, called from +34 ...")."""
    # given: a member who redeemed a voucher, was given points with a reason, and erased
    api = client_for(till.secret)
    coffee = Reward.objects.create(name="Coffee", points_cost=100)
    post(api, "/api/v1/members", {"external_id": "M-ZQ", "email": "zq@example.org"})
    member = Member.objects.get(external_id="M-ZQ")
    adjust_points(member=member, points=300, reason="Goodwill: Zeb called from +34 699", by=staff)
    redeemed = post(
        api, "/api/v1/redemptions", {"external_id": "R-ZQ", "member": "M-ZQ", "reward": coffee.pk}
    )
    code = json.loads(redeemed.content)["code"]
    erased = erase_member(member=member, by=staff).external_id

    # when: a till reads the voucher, and whoever has a key follows the code it names
    voucher = json.loads(api.get(f"/api/v1/vouchers/{code}").content)
    pages = [api.get(f"/api/v1/members/{erased}{path}") for path in ["", "/ledger", "/rewards"]]

    # then: the voucher still works at the till but names no account, and the erased
    # account's code finds nothing
    assert voucher["status"] == "valid" and voucher["member"] is None
    assert [page.status_code for page in pages] == [404, 404, 404]
    assert all(b"+34 699" not in page.content for page in pages)


def test_codes_to_forget_are_named_by_their_time_in_the_programme_s_time_zone(db):
    from datetime import UTC, datetime

    from django.utils import timezone

    from api.models import CodesToForget

    kept = CodesToForget(codes=["M-1", "M-2"], created_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))

    with timezone.override("Europe/Madrid"):  # UTC+1 in March
        assert str(kept) == "2 codes erased 2026-03-02 00:30"
