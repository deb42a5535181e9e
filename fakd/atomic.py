"""Atomic file writes: a reader (or a killed process) sees the old file or the new one, never half.

The content goes to a temporary file in the target's folder, is flushed and fsync'ed, then
``os.replace``d over the target; on any error the temporary file is removed. Checkpoints
(``fakd.zoo.checkpoint``) stream into the same scheme themselves; everything else written whole
(images, JSON, HTML, figures) goes through here. ``StagedFiles`` writes a batch of files that
appear together or not at all (``fakd degrade``, ``fakd upscale``).

A failure of the storage (disk full, permission denied, read-only; ``ENVIRONMENT_ERRNOS``) while
writing becomes a ``FakdError`` naming the file (``storage_errors``), so the CLI reports it in one line.
"""

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fakd.errors import FakdError

# Failures of the machine, not of fakd: reported as one line naming the file, never a traceback.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                                errno.EFBIG, errno.ENAMETOOLONG, errno.EMFILE})


@contextlib.contextmanager
def storage_errors(path: str | Path) -> Iterator[None]:
    """Turn an environment ``OSError`` inside the block into a ``FakdError`` naming ``path``."""
    try:
        yield
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRNOS:
            raise
        raise FakdError(f"cannot write {error.filename or path}: {error.strerror or error}") from None


def write_bytes_atomically(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` in one step; creates the parent folder."""
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = _write_temporary(path, data)
        try:
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    return path


def _write_temporary(path: Path, data: bytes) -> Path:
    """``data`` in a new hidden file beside ``path`` (flushed, fsync'ed, mode 0644); removed on error."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def write_text_atomically(path: str | Path, text: str) -> Path:
    """``write_bytes_atomically`` of UTF-8 text."""
    return write_bytes_atomically(path, text.encode("utf-8"))


def write_json_atomically(path: str | Path, content: Any, *, default=None) -> Path:
    """``content`` as indented JSON (``default`` as for ``json.dumps``), written atomically."""
    return write_text_atomically(path, json.dumps(content, indent=2, default=default) + "\n")


class StagedFiles:
    """A batch of files that appears whole or not at all.

    ``write_bytes`` puts each file's data in a hidden temporary file beside its target (so the disk
    space is taken, and a full disk is found, before anything appears); leaving the ``with`` block
    normally renames them all into place, an exception removes them all, and folders the batch
    created are removed again when they stay empty. A target written twice is an error, so two
    inputs can never silently become one output.
    """

    def __init__(self) -> None:
        self._staged: dict[Path, Path] = {}
        self._created: list[Path] = []

    def __enter__(self) -> "StagedFiles":
        return self

    def make_folder(self, folder: str | Path) -> Path:
        """Create ``folder`` (and its parents) now; the ones created are removed if the batch fails."""
        folder = Path(folder)
        missing = [parent for parent in [folder, *folder.parents] if not parent.exists()]
        with storage_errors(folder):
            folder.mkdir(parents=True, exist_ok=True)
        self._created += missing  # deepest first
        return folder

    def write_bytes(self, path: str | Path, data: bytes) -> None:
        """Stage ``data`` as the content of ``path``."""
        with self.open(path) as stream:
            stream.write(data)

    @contextlib.contextmanager
    def open(self, path: str | Path) -> Iterator[Any]:
        """A binary stream whose content becomes ``path`` when the batch succeeds (written as it comes)."""
        path = Path(path)
        if path in self._staged:
            raise FakdError(f"two outputs would both be written to {path}")
        self.make_folder(path.parent)
        with storage_errors(path):
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temporary = Path(name)
            self._staged[path] = temporary
            with os.fdopen(handle, "wb") as stream:
                yield stream
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, 0o644)

    def __exit__(self, kind, value, traceback) -> bool:
        if kind is None:
            with storage_errors(next(iter(self._staged), ".")):
                for target, temporary in self._staged.items():
                    os.replace(temporary, target)
            self._staged.clear()
            return False
        for temporary in self._staged.values():
            temporary.unlink(missing_ok=True)
        for folder in self._created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        return False
