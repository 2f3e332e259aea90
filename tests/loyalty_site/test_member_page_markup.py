"""The member page as assistive technology reads it: each form field's help is the
element its aria-describedby names, and no id is on two elements (the page holds
several forms, each with its one-time token)."""

import re
from collections import Counter

import pytest

from tests.loyalty_site.conftest import page

pytestmark = pytest.mark.django_db


def test_every_help_text_is_found_and_every_id_is_unique(admin_client, member, catalogue):
    html = page(admin_client, member)

    ids = Counter(re.findall(r'\sid="([^"]+)"', html))
    assert [name for name, times in ids.items() if times > 1] == []
    described = set(re.findall(r'aria-describedby="([^"]+)"', html))
    assert described, "the page's forms describe no field"
    assert sorted(described - ids.keys()) == []
    assert 'id="id_points_helptext">Negative to remove points.' in html
