from celery import shared_task

from api.services import prune_first_answers
from core.jobs import RETRY_WHEN_UNAVAILABLE


@shared_task(**RETRY_WHEN_UNAVAILABLE)
def prune_first_answers_task() -> int:
    """Beat, daily: drop the API's old first answers."""
    return prune_first_answers()
