"""A distilled run of the trainer (data.loader = cpu) reading the teacher cache trains exactly as
the same run with the online teacher: the same loss at every step."""

from __future__ import annotations

import pytest

from fastdeit.config.load import build_config
from fastdeit.distill.build_cache import build_teacher_cache
from fastdeit.train.loop import train
from fastdeit.train.metrics import read_metrics

from .conftest import TEACHER


def overrides(setup, out, *extra: str) -> list[str]:
    return [
        f'data.train="{setup.data.train}"', 'data.val=""', "data.loader=cpu", "data.img_size=32",
        "data.global_batch=64", "data.workers=1", "augment.mix_group=16",
        "model.name=deit_tiny_distilled_patch16_224", "model.patch_size=8", "model.embed_dim=32",
        "model.depth=2", "model.num_heads=2", "model.drop_path=0.0", "model.channels_last=false",
        "distill.kind=soft", f"distill.teacher={TEACHER}", f'distill.teacher_checkpoint="{setup.distill.teacher_checkpoint}"',
        "schedule.epochs=2", "schedule.warmup_epochs=1", "run.max_steps=6", "run.log_every=1", "run.progress=none",
        "run.precision=fp32", "run.device=cpu", "run.seed=5", "run.plot=false", f'run.out="{out}"', *extra,
    ]


def step_losses(out) -> list[float]:
    return [r["loss"] for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "step"]


def test_training_from_the_cache_gives_the_online_teachers_losses(setup, tmp_path):
    online = build_config("deit_ti_300ep", overrides=overrides(setup, tmp_path / "online"))
    train(online)
    cache = build_teacher_cache(tmp_path / "run.cache", data=online.data, augment=online.augment,
                                distill=online.distill, seed=online.run.seed, epochs=(0, online.schedule.epochs),
                                k=4, device="cpu", precision="fp32", progress=False)
    cached = build_config("deit_ti_300ep", overrides=overrides(setup, tmp_path / "cached", f'distill.cache="{cache}"'))
    train(cached)
    a, b = step_losses(tmp_path / "online"), step_losses(tmp_path / "cached")
    assert len(a) == len(b) == 6  # crosses the epoch boundary (4 steps per epoch)
    assert b == pytest.approx(a, rel=1e-3)


def test_a_missing_cache_says_how_to_build_it(setup, tmp_path):
    missing = tmp_path / "nope.cache"
    config = build_config("deit_ti_300ep", overrides=overrides(setup, tmp_path / "run", f'distill.cache="{missing}"'))
    with pytest.raises(ValueError, match=f"distill.cache: no such file {missing}; build it first with "
                                         "`fastdeit teacher-cache`"):
        train(config)
