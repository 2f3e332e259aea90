#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")
    if sys.argv[1:2] == ["runserver"]:  # the web of `make run`, as gunicorn's
        from loyalty_site.web_process import as_web_process

        as_web_process()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
