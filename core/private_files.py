"""Files staff upload for the workers to read (imports), kept apart from MEDIA_ROOT:
they hold customers' personal data, so no URL reaches them. The permission-checked
admin views are the only way out (an import's bad rows as CSV)."""

import contextlib
import os
import tempfile
import time
import uuid

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from import_export.tmp_storages import TempFolderStorage


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


# A previewed file not confirmed within a day is uploaded again.
PENDING_KEPT_SECONDS = 24 * 60 * 60


class PendingUploads(TempFolderStorage):
    """django-import-export's copy of a file between its preview and its confirmation,
    in IMPORTS_ROOT/pending (private, and shared by the web processes, so a confirmation
    reaching another machine than its preview finds it) rather than one machine's
    temporary folder, where it stayed for ever when never confirmed (sweep_pending)."""

    def get_full_path(self):
        return os.path.join(pending_folder(), self.name)

    def _open(self, mode="r"):
        if self.name:
            return open(self.get_full_path(), mode, encoding=self.encoding)
        kept = tempfile.NamedTemporaryFile(delete=False, dir=pending_folder())
        self.name = os.path.basename(kept.name)
        return kept


def pending_folder() -> str:
    folder = os.path.join(settings.IMPORTS_ROOT, "pending")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def sweep_pending() -> int:
    """Delete the previewed files never confirmed within PENDING_KEPT_SECONDS."""
    folder, deleted = pending_folder(), 0
    for entry in os.scandir(folder):
        if entry.is_file() and time.time() - entry.stat().st_mtime > PENDING_KEPT_SECONDS:
            with contextlib.suppress(FileNotFoundError):  # confirmed meanwhile
                os.remove(entry.path)
                deleted += 1
    return deleted
