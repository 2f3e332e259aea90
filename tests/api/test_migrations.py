"""The api app's data migrations, on the rows they were written for."""

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType

from api.services import create_api_key
from members.models import Member
from tests.migrations import latest_after, migrate  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("latest_after"),
]


def test_a_key_s_history_rows_written_before_name_it_by_its_account(member, staff):
    # given: an enrolment by "Till 3", since renamed, written when rows named the key;
    # and an agent's row that happens to say the same words
    key, _ = create_api_key(name="Till 4", channel="pos")
    migrate([("api", "0013_codes_to_forget")])
    written = {"content_type": ContentType.objects.get_for_model(Member)}
    written |= {"object_id": str(member.pk), "object_repr": "M", "action_flag": ADDITION}
    by_key = LogEntry.objects.create(
        user_id=key.user_id, change_message="Enrolled through the API key Till 3", **written
    )
    by_agent = LogEntry.objects.create(
        user=staff, change_message="Noted: asked about a purchase through the API key X", **written
    )

    # when: the upgrade
    migrate([("api", "0014_history_names_key_by_account")])

    # then: the key's row names it by its account, which says its name now
    by_key.refresh_from_db()
    assert by_key.get_change_message() == "Enrolled through the API"
    by_agent.refresh_from_db()
    assert by_agent.change_message.endswith("through the API key X")


def test_finishing_the_upgrade_names_by_its_account_the_rows_the_release_before_wrote(
    member,
):
    """Found by an audit of upgrades: a key's enrolments made by the web of the release
    before, once migrated, kept the key's name in their text."""
    import io

    from django.core.management import call_command

    # given: a row the web of the release before wrote after the migrate
    key, _ = create_api_key(name="Till 7", channel="pos")
    written = {"content_type": ContentType.objects.get_for_model(Member)}
    written |= {"object_id": str(member.pk), "object_repr": "M", "action_flag": ADDITION}
    row = LogEntry.objects.create(
        user_id=key.user_id, change_message="Enrolled through the API key Till 7", **written
    )
    out = io.StringIO()

    # when: every process runs the new release
    call_command("finish_upgrade", stdout=out)
    call_command("finish_upgrade", stdout=out)

    # then: the row names the key by its account; the second run finds nothing
    row.refresh_from_db()
    assert row.change_message == "Enrolled through the API"
    assert [line for line in out.getvalue().splitlines() if line.startswith("key")] == [
        "key history rows=1",
        "key history rows=0",
    ]


def test_finishing_the_upgrade_leaves_this_release_s_rows_as_written(member):
    """Found by an audit: a reward named with the words " through the API key " was cut
    from this release's rows at every upgrade."""
    import io

    from django.core.management import call_command

    from api.history import log_api_change

    key, _ = create_api_key(name="Till 7", channel="pos")
    row = log_api_change(key, member, "Redeemed Free coffee through the API key fob")

    call_command("finish_upgrade", stdout=io.StringIO())

    row.refresh_from_db()
    assert row.change_message == "Redeemed Free coffee through the API key fob through the API"
