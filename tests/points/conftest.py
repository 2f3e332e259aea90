from datetime import date

import pytest

from points.models import ExpiryPolicy


@pytest.fixture
def alice(make_member):
    """A new member, M-0001, as the example files of the imports name her."""
    return make_member("M-0001")


@pytest.fixture
def bob(make_member):
    """A new member, M-0002."""
    return make_member("M-0002")


@pytest.fixture
def monthly(db):
    """Monthly expiry from 1 January 2026: the month ends of 2026 are cutoffs."""
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", date(2026, 1, 1)
    policy.save()
    return policy


@pytest.fixture
def media(settings, tmp_path):
    """An import's progress (its background steps') in the test's folder, as its files
    are (tests/conftest.py, media_in_tmp)."""
    settings.CACHES = {
        **settings.CACHES,
        "progress": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "progress"),
        },
    }
