"""`.env` is read one way by every process: the settings (manage.py) and the processes
honcho starts under `make run` and `make serve` (loyalty_site.env_file)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEY = "Zq8vN3xLp7Rt2Wm9Kc4Hy6Bd1Fg5Js0Ua8Ee3Oi7Tn2Sl6Pk9Xw4Mr1Gh5Qj0#Vb3Cz"
NAMES = ("SECRET_KEY", "SENDER", "CACHE_URL")
PRINT = f"import os; print('|'.join(os.environ.get(n, '-') for n in {NAMES}))"


def python(*args, env):
    """This Python in the project's folder, with `env`: its output as text."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_web_worker_and_beat_read_env_as_manage_py_does(tmp_path):
    """Found by a review: under `make serve` honcho read .env itself, so web, worker and
    beat ran with a secret key cut at its '#' while commands used the whole key (an
    erased customer's digest no longer matched), a sender's name lost its spaces and an
    `export` line was left out."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"SECRET_KEY={KEY}\nSENDER='Loyalty Team <loyalty@example.com>'\n"
        "export CACHE_URL=redis://127.0.0.1:6379/3\n"
    )
    (tmp_path / "Procfile").write_text(f'show: {sys.executable} -c "{PRINT}"\n')
    env = {k: v for k, v in os.environ.items() if k not in NAMES}
    env["ENV_FILE"] = str(env_file)
    honcho = Path(sys.executable).with_name("honcho")

    # when: a process started as `make serve` starts them (the Makefile's command)
    procfile = str(tmp_path / "Procfile")
    honcho_start = [str(honcho), "-e", "/dev/null", "-f", procfile, "start"]
    started = python("-m", "loyalty_site.env_file", *honcho_start, env=env)

    # then: it sees the values the settings read, whole
    expected = f"{KEY}|Loyalty Team <loyalty@example.com>|redis://127.0.0.1:6379/3"
    assert expected in started.stdout, started.stdout + started.stderr
    settings = python("-c", "import loyalty_site.settings; " + PRINT, env=env)
    assert settings.stdout.strip() == expected, settings.stderr


def test_the_environment_wins_over_env(tmp_path):
    (tmp_path / ".env").write_text("SENDER=from-the-file\n")
    env = {**os.environ, "ENV_FILE": str(tmp_path / ".env"), "SENDER": "from-the-environment"}
    shown = python("-m", "loyalty_site.env_file", sys.executable, "-c", PRINT, env=env)
    assert shown.stdout.split("|")[1] == "from-the-environment"
