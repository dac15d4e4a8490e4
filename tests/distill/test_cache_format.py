"""The cache file on its own: a process killed mid-build loses only uncommitted steps, and parts
of different builds are not merged."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from fastdeit.distill.cache_format import CacheHeader, CacheWriter, merge_caches
from fastdeit.distill.cache_reader import TeacherCache

REPO = str(Path(__file__).parents[2])
HEADER = dict(dataset="d", seed=0, recipe="r", plan_version=1, teacher="t", teacher_checksum="c", k=2,
              epochs=(0, 2), samples_per_epoch=8, chunk_samples=4, num_classes=5)


def chunk(c: int) -> tuple[np.ndarray, np.ndarray]:
    values = (np.arange(8, dtype=np.float16).reshape(4, 2) * -1 + 10 * c).astype(np.float16)
    return values, (np.arange(8).reshape(4, 2) % 5).astype(np.int16)


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from fastdeit.distill.cache_format import CacheHeader, CacheWriter
    from tests.distill.test_cache_format import HEADER, chunk
    w = CacheWriter(sys.argv[1], CacheHeader(**HEADER), commit_every_s=3600)
    w.write_chunk(0, *chunk(0)); w.write_chunk(1, *chunk(1))
    w.commit()
    w.write_chunk(2, *chunk(2))  # written, not yet committed
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_killed_writer_keeps_committed_steps_and_resumes(tmp_path):
    out = tmp_path / "c.cache"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert not out.exists() and out.with_name("c.cache.partial").exists()
    with CacheWriter(out, CacheHeader(**HEADER), resume=True) as w:
        assert w.todo() == [2, 3]  # step 2 was never committed: recomputed
        for c in w.todo():
            w.write_chunk(c, *chunk(c))
        w.finish()
    with TeacherCache(out) as cache:
        for c in range(4):
            epoch, step = divmod(c, 2)
            values, indices = cache.topk(epoch, np.arange(step * 4, step * 4 + 4))
            assert torch.equal(values, torch.from_numpy(chunk(c)[0]))
            assert torch.equal(indices, torch.from_numpy(chunk(c)[1].astype(np.int64)))


def test_merge_refuses_parts_of_another_build(tmp_path):
    parts = []
    for i, k in ((0, 2), (1, 3)):
        header = CacheHeader(**{**HEADER, "k": k}, shard=(i, 2))
        with CacheWriter(tmp_path / f"p{i}.cache", header) as w:
            for c in w.todo():
                v, ix = chunk(c)
                w.write_chunk(c, np.pad(v, ((0, 0), (0, k - 2)), constant_values=-9),
                              np.pad(ix, ((0, 0), (0, k - 2)), constant_values=4))
            parts.append(w.finish())
    with pytest.raises(ValueError, match=r"p1.cache does not belong with .*k \(top-k logits per sample\) differs"):
        merge_caches(tmp_path / "m.cache", parts)
    assert not (tmp_path / "m.cache").exists() and not (tmp_path / "m.cache.partial").exists()


def test_bad_headers_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="k = 6"):
        CacheHeader(**{**HEADER, "k": 6})
    with pytest.raises(ValueError, match="epoch range 2:2"):
        CacheHeader(**{**HEADER, "epochs": (2, 2)})
    with pytest.raises(ValueError, match="whole number of steps"):
        CacheHeader(**{**HEADER, "chunk_samples": 3})
