"""The Jupyter kernel that executes notebooks (the batch's run notebooks, the book's pages): local IPC transport.

Over TCP, every ipykernel start logs a warning that the channel is unencrypted, one per notebook in the build log
a user watches; over IPC the kernel talks through local socket files, which nothing outside this machine can
reach, and says nothing. Each kernel gets socket paths of its own in the temporary folder (jupyter_client's
default, ``kernel-ipc`` in the working directory, would be shared by the batch's parallel kernels, which then
read each other's messages).
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager


class LocalKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels use IPC sockets of their own instead of TCP ports."""

    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", str(Path(tempfile.gettempdir()) / f"asgt-kernel-{uuid.uuid4().hex[:16]}"))
        super().__init__(**kwargs)
