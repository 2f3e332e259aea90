"""The members app's data migrations, on the rows they were written for."""

import hashlib

import pytest

from members.models import Member
from members.selectors import erased_codes
from tests.migrations import latest_after, migrate  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("latest_after"),
]


def test_the_erased_codes_kept_before_are_keyed_and_still_known(make_member, staff):
    # given: an account erased before its code was kept keyed (a plain SHA-256)
    from members.services import erase_member

    erased = erase_member(member=make_member("M-OLD-1"), by=staff)
    migrate([("members", "0033_names_read_as_they_show")])
    plain = hashlib.sha256(b"erased customer code:M-OLD-1").hexdigest()
    Member.objects.filter(pk=erased.pk).update(erased_code=plain)

    # when: the upgrade
    migrate([("members", "0034_erased_codes_keyed")])

    # then: the plain hash is gone, and the code is known as an erased customer's
    assert Member.objects.get(pk=erased.pk).erased_code != plain
    assert erased_codes(["M-OLD-1", "M-OTHER"]) == {"M-OLD-1"}
