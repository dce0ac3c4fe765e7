"""The filesystem broker of the demo and tests (``filesystem://``), without kombu's race.

kombu's filesystem transport creates a message's file, then writes it; a consumer listing
the folder in between moves the empty file away, fails to parse it and the worker stops
("Unrecoverable error: JSONDecodeError"). Here a message is written under a name no consumer
matches and renamed into place, which is atomic on one filesystem.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        # The name kombu's consumer reads: "<ms>_<uuid>.<queue>.msg".
        final = os.path.join(self.data_folder_out,
                             f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg")
        partial = f"{final}.part"  # ".<queue>.msg.part": no consumer takes it
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
