""".env, read one way by every process: the settings (manage.py, and so every command)
and, through `python -m loyalty_site.env_file COMMAND...`, the processes honcho starts
(web, worker and beat under `make run` and `make serve`).

honcho reads .env with its own parser: an unquoted `#` starts a comment even inside a
value (a SECRET_KEY cut short), spaces are dropped, `export X=...` lines are left out,
and the file wins over the environment. So honcho is given no .env (`-e /dev/null`)
and this runs it with the environment django-environ makes of the file: the
environment first, then what the file adds."""

import os
import sys
from pathlib import Path

import environ

# ENV_FILE: another file than the project's .env (a deployment's own, a test's).
ENV_FILE = Path(os.environ.get("ENV_FILE") or Path(__file__).resolve().parent.parent / ".env")


def read_env_file() -> None:
    """Add .env's variables to this process's environment; those already set stay."""
    environ.Env.read_env(ENV_FILE, overwrite=False)


if __name__ == "__main__":
    read_env_file()
    os.execvp(sys.argv[1], sys.argv[1:])
