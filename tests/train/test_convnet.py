"""A convnet (the demo's teacher) trains through the same trainer and serves as a teacher."""

import torch

from fastdeit.config.load import build_config
from fastdeit.config.schema import DistillConfig
from fastdeit.distill.teacher import load_teacher
from fastdeit.train.checkpoint import load_checkpoint
from fastdeit.train.loop import train
from tests.train.conftest import CLASSES, tiny_overrides

CONVNET = ["model.name=test_resnet", "model.patch_size=0", "model.embed_dim=0", "model.depth=0",
           "model.num_heads=0", "schedule.epochs=1", "schedule.warmup_epochs=0"]


def test_convnet_trains_an_epoch_and_teaches_a_distilled_student(tiny_folders, tmp_path):
    train_dir, val_dir = tiny_folders
    out = tmp_path / "cnn"
    final = train(build_config("deit_ti_300ep", overrides=tiny_overrides(train_dir, val_dir, out, *CONVNET)))
    assert 0 <= final["top1"] <= 100 and "top1_dist" not in final
    blob = load_checkpoint(out / "best.pt")
    assert blob["config"]["model"]["name"] == "test_resnet" and blob["epoch"] == 1
    assert any(k.endswith("running_mean") for k in blob["model"])  # batch norm statistics are kept

    # the teacher loader rebuilds the convnet from the checkpoint's own config, in eval mode
    teacher = load_teacher(DistillConfig(kind="hard", teacher="test_resnet",
                                         teacher_checkpoint=str(out / "best.pt")), CLASSES, torch.device("cpu"))
    assert not teacher.training and teacher(torch.randn(3, 3, 32, 32)).shape == (3, CLASSES)

    student = tiny_overrides(train_dir, val_dir, tmp_path / "student", "model.name=deit_tiny_distilled_patch16_224",
                             "distill.kind=hard", "distill.teacher=test_resnet",
                             f'distill.teacher_checkpoint="{out / "best.pt"}"', "run.max_steps=2")
    final = train(build_config("deit_ti_distilled_300ep", overrides=student))
    assert {"top1_cls", "top1_dist"} <= final.keys()
