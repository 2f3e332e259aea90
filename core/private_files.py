"""Files staff upload for the workers to read (imports), kept apart from MEDIA_ROOT:
they hold customers' personal data, so no URL reaches them. The permission-checked
admin views are the only way out (an import's bad rows as CSV)."""

import os
import uuid

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils import timezone
from django.utils.deconstruct import deconstructible


@deconstructible(path="core.private_files.PrivateFiles")
class PrivateFiles(FileSystemStorage):
    """The folder IMPORTS_ROOT (read when used, as MEDIA_ROOT is), with no URL: web and
    workers share it, and the web server in front of the app never serves it. Its files
    and folders are the application's user's alone (another account on the machine
    reads none of them)."""

    def __init__(self):
        super().__init__(file_permissions_mode=0o600, directory_permissions_mode=0o700)

    @property
    def base_location(self):
        return settings.IMPORTS_ROOT

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    def url(self, name):
        raise ValueError("Import files have no URL: they are read through the admin's views.")


def stored_name(instance, filename: str) -> str:
    """An uploaded file's name in the folder: by month, random (the name as uploaded,
    which staff read, is kept on its row), so one file's name tells nothing of another."""
    return f"{timezone.now():%Y/%m}/{uuid.uuid4().hex}.csv"
