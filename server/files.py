"""The file store: bytes by key (document PDFs, stamps, signatures). One small interface, so an object store
can replace the local directory without touching what stores files.

Keys are ours (`documents/12/OF-2026-001.pdf`): relative, slash-separated, no `..`; anything else is refused.
"""

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from server.config import settings

_KEY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


class FileStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes:
        """The file's bytes; FileNotFoundError when there is none."""
        ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


def safe_key(key: str) -> str:
    if not _KEY.match(key) or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"not a file key: {key[:80]!r}")
    return key


class LocalDirectory:
    """Files under one directory; a write lands whole or not at all (written aside, then renamed)."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / safe_key(key)

    def _put(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, aside = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(aside, target)
        except BaseException:
            Path(aside).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    def get_now(self, key: str) -> bytes:
        """For code already off the event loop (WeasyPrint's URL fetcher)."""
        return self.path(key).read_bytes()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)


def store() -> LocalDirectory:
    """The configured store (today always the local directory of PIPEWRIGHT_FILES_DIR)."""
    return LocalDirectory(settings().files_path)
