"""numba's cache of a function that compiles in another file's kernel is emptied when that file changes."""

import os
import subprocess
import sys
import textwrap

import pytest

from fastdeit.kernels import chunk_decode
from fastdeit.kernels.numba_cache import flush_when_sources_change, sources_digest

USER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import numba
    import dep

    @numba.njit(cache=True)
    def g():
        return dep.f()

    flushed = None
    if os.environ.get("FLUSH") == "1":
        from fastdeit.kernels.numba_cache import flush_when_sources_change
        flushed = flush_when_sources_change("user", [g], [Path(dep.__file__)])
    print(g(), flushed)
""")


def _dep(value):
    return f"import numba\n\n\n@numba.njit(cache=True)\ndef f():\n    return {value}\n"


def _run(folder, flush):
    env = {**os.environ, "FLUSH": "1" if flush else "0", "PYTHONPATH": str(folder), "NUMBA_CACHE_DIR": ""}
    out = subprocess.run([sys.executable, str(folder / "user.py")], env=env, capture_output=True, text=True,
                         check=True, timeout=300)
    return out.stdout.split()


@pytest.mark.slow
def test_a_change_to_the_inlined_file_alone_reaches_the_cached_caller(tmp_path):
    (tmp_path / "dep.py").write_text(_dep(1))
    (tmp_path / "user.py").write_text(USER)
    assert _run(tmp_path, flush=True) == ["1", "True"]  # first use: no stamp yet
    (tmp_path / "dep.py").write_text(_dep(22))
    # numba alone keeps the stale caller: user.py did not change (the hazard this guards against)
    assert _run(tmp_path, flush=False) == ["1", "None"]
    assert _run(tmp_path, flush=True) == ["22", "True"]
    assert _run(tmp_path, flush=True) == ["22", "False"]  # unchanged since: the cache is kept


def test_the_chunk_kernels_cache_is_stamped_with_resize_and_itself():
    from pathlib import Path

    from fastdeit.kernels import resize

    path = Path(chunk_decode.decode_chunk._cache._cache_path) / "chunk_decode.sources"
    assert path.read_text() == sources_digest([Path(chunk_decode.__file__), Path(resize.__file__)])
    # stamped already: a second call keeps the cache
    assert not flush_when_sources_change("chunk_decode", [chunk_decode.decode_chunk],
                                         [Path(chunk_decode.__file__), Path(resize.__file__)])


def test_digest_depends_on_contents_and_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x")
    b.write_text("y")
    assert sources_digest([a, b]) != sources_digest([b, a])
    d = sources_digest([a])
    a.write_text("z")
    assert sources_digest([a]) != d
