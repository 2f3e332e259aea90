"""A redemption caught between its write and its commit, for the race tests (PostgreSQL,
transactional): what another writer meets while a redemption holds its rows."""

import threading
from contextlib import contextmanager

from django.db import connections, transaction

from rewards.services import redeem


@contextmanager
def redemption_uncommitted(member, reward):
    """`member` redeems `reward` in a thread of its own, which has taken the unit and the
    points but not committed: yields the event that commits it, and waits for the thread
    on the way out (committing it then, if nothing did)."""
    taken, commit = threading.Event(), threading.Event()

    def redeem_and_wait():
        try:
            with transaction.atomic():
                redeem(member=member, reward=reward)
                taken.set()
                commit.wait(10)
        finally:
            connections.close_all()

    redeeming = threading.Thread(target=redeem_and_wait)
    redeeming.start()
    assert taken.wait(10), "the redemption did not happen"
    try:
        yield commit
    finally:
        commit.set()
        redeeming.join()
