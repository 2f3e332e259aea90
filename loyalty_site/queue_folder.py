"""The zero-server broker: kombu's filesystem transport, with each message written
whole before a worker can see it. kombu's own `_put` creates the message file under its
final name and then writes into it, while a worker's `_get` moves away and reads any
file of its queue, lock or not: a worker that took a file still empty stopped with
"Unrecoverable error: JSONDecodeError", and `make run` stopped the web server with it.
Here the message is written under a name the workers skip, then renamed (one atomic
step on every file system).

Selected by CELERY_BROKER_TRANSPORT when CELERY_BROKER_URL is filesystem://."""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`: its file appears complete, or not at all."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        data = str_to_bytes(dumps(payload))
        try:
            with open(f"{final}.part", "wb") as part:  # "<queue>.msg.part": not read
                part.write(data)
            os.replace(f"{final}.part", final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
