"""One definition of each shared policy (issue 16, point 8): the precision policy, the soft-target
helper, the mix-mode codes and the recipe limits, used by every path that needs them."""

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

import fastdeit
from fastdeit.config.schema import AugmentConfig, DataConfig
from fastdeit.precision import autocast_dtype, needs_grad_scaler

PACKAGE = Path(fastdeit.__file__).parent


def top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
    return names


@pytest.mark.parametrize("name", ["smoothed_one_hot", "MIX_NONE", "MIX_MIXUP", "MIX_CUTMIX", "autocast_dtype",
                                  "autocast_for", "check_augment_recipe", "check_mix_group"])
def test_defined_once_in_the_package(name):
    where = [p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py") if name in top_level_names(p)]
    assert len(where) == 1, f"{name} defined in {where}"


def test_train_eval_and_distill_use_the_precision_module():
    for module in ("train/step.py", "train/loop.py", "eval/evaluate.py", "distill/build_cache.py",
                   "distill/cache_identity.py"):
        assert "fastdeit.precision import" in (PACKAGE / module).read_text(), module


def test_precision_policy():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype(cpu, "auto") == torch.float32 and autocast_dtype(cuda, "auto") == torch.bfloat16
    assert autocast_dtype(cpu, "fp16") == torch.float32 and autocast_dtype(cuda, "fp16") == torch.float16
    assert needs_grad_scaler(cuda, "fp16") and not needs_grad_scaler(cpu, "fp16")
    with pytest.raises(ValueError, match="run.precision"):
        autocast_dtype(cpu, "fp8")


@pytest.mark.parametrize("change, key", [({"mix_group": 15}, "augment.mix_group"),
                                         ({"mixup_mode": "pair"}, "augment.mixup_mode"),
                                         ({"recount": 2}, "augment.recount")])
def test_every_augmentation_path_refuses_the_same_recipe(change, key):
    from fastdeit.augment.pipeline import DeviceAugment
    from fastdeit.data.plan import PlanConfig
    from fastdeit.data.reference import ReferenceMixup

    aug = dataclasses.replace(AugmentConfig(), **change)
    for build in (lambda: DeviceAugment(aug, 10), lambda: ReferenceMixup(aug, 10),
                  lambda: PlanConfig.from_configs(DataConfig(global_batch=60), aug)):
        with pytest.raises(ValueError, match=key):
            build()
