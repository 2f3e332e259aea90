"""What a web process sets before Django reads its settings: gunicorn's (wsgi.py) and
runserver's (manage.py, `make run`)."""

import os


def as_web_process() -> None:
    # The web's requests wait at most 2 s for a row lock, then answer 503 (settings): a
    # request waiting holds one of the web's threads, and a job holds its members for long.
    os.environ.setdefault("DATABASE_LOCK_TIMEOUT", "2s")
