"""Atomic file writes: a reader (or a killed process) sees the old file or the new one, never half.

The content goes to a temporary file in the target's folder, is flushed and fsync'ed, then
``os.replace``d over the target; on any error the temporary file is removed. Checkpoints
(``fakd.engine.checkpoint``) stream into the same scheme themselves; everything else written whole
(images, JSON, HTML, figures) goes through here.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomically(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` in one step; creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | Path, text: str) -> Path:
    """``write_bytes_atomically`` of UTF-8 text."""
    return write_bytes_atomically(path, text.encode("utf-8"))


def write_json_atomically(path: str | Path, content: Any, *, default=None) -> Path:
    """``content`` as indented JSON (``default`` as for ``json.dumps``), written atomically."""
    return write_text_atomically(path, json.dumps(content, indent=2, default=default) + "\n")
