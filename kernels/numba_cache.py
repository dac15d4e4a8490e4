"""numba's on-disk cache of a function that compiles in another file's code: emptied when that file changes.

numba keys a cached function (`cache=True`) by the modification time and size of the file that
defines it, and nothing else. `chunk_decode.decode_chunk` compiles `resize.py`'s kernel into
itself, so after a change to `resize.py` alone (a `git pull`, an editable install) the cached
`decode_chunk` would go on computing the old pixels while `DECODER_VERSION` says otherwise. This
keeps a hash of the files such a function depends on beside its cache, and empties the cache
when the hash changes, before the function is first called.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def sources_digest(sources: Iterable[Path]) -> str:
    """SHA-256 over the files' contents, in order."""
    h = hashlib.sha256()
    for path in sources:
        data = Path(path).read_bytes()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def flush_when_sources_change(name: str, dispatchers: Iterable, sources: Iterable[Path]) -> bool:
    """Empty the on-disk caches of the numba `dispatchers` if `sources` changed since the last
    call (their digest is kept in `<cache dir>/<name>.sources`). Returns whether it emptied them.

    Without a cache on disk (numba found no writable cache directory) there is nothing to empty.
    """
    digest = sources_digest(sources)
    by_dir: dict[str, list] = {}
    for dispatcher in dispatchers:
        cache = getattr(dispatcher, "_cache", None)
        path = getattr(cache, "_cache_path", None)
        if path is not None and callable(getattr(cache, "flush", None)):
            by_dir.setdefault(path, []).append(cache)
    flushed = False
    for path, caches in by_dir.items():
        stamp = Path(path) / f"{name}.sources"
        try:
            if stamp.read_text() == digest:
                continue
        except OSError:  # first use of this cache directory: its entries may predate the stamp
            pass
        for cache in caches:
            cache.flush()
        _write_atomically(stamp, digest)
        flushed = True
    return flushed


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary name in the same folder, then rename (processes may race here)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:  # a read-only cache directory: the caches were emptied, the stamp waits
        pass
