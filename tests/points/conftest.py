import pytest


@pytest.fixture
def alice(make_member):
    """A new member, M-0001, as the example files of the imports name her."""
    return make_member("M-0001")


@pytest.fixture
def bob(make_member):
    """A new member, M-0002."""
    return make_member("M-0002")
