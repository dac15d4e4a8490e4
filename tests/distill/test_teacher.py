"""The online teacher: file layouts, bad files, and preparation (frozen, compiled per distill.teacher_compile)."""

import pytest
import timm
import torch

from fastdeit.config.load import build_config
from fastdeit.config.schema import DistillConfig
from fastdeit.distill.teacher import load_teacher, prepare_for_inference

CPU = torch.device("cpu")


def tiny_cnn() -> torch.nn.Module:
    return timm.create_model("test_resnet", num_classes=5)


@pytest.mark.parametrize("setting, compiled", [("auto", False), ("off", False), ("on", True)])
def test_teacher_is_frozen_and_compiled_only_when_asked_on_cpu(setting, compiled):
    teacher = prepare_for_inference(tiny_cnn(), CPU, setting)
    assert isinstance(teacher, torch._dynamo.eval_frame.OptimizedModule) == compiled
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_compiled_teacher_gives_the_eager_teachers_logits():
    torch.manual_seed(0)
    net = tiny_cnn()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        eager = prepare_for_inference(net, CPU, "off")(x)
        compiled = prepare_for_inference(net, CPU, "on")(x)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)
    assert torch.equal(compiled.argmax(1), eager.argmax(1))


def test_teacher_compile_setting_is_validated():
    with pytest.raises(ValueError, match="distill.teacher_compile"):
        build_config("deit_ti_300ep", overrides=["distill.teacher_compile=yes"])


# ---- teacher files: deit's layout, and bad files of each kind, named in the error ----------------


def teacher_config(path, name="test_resnet") -> DistillConfig:
    return DistillConfig(kind="hard", teacher=name, teacher_checkpoint=str(path))


def test_deits_teacher_file_layout_and_a_bare_state_dict_both_load(tmp_path):
    net = tiny_cnn()
    torch.save({"model": net.state_dict()}, tmp_path / "deit.pth")  # deit's released file keeps it under "model"
    torch.save(net.state_dict(), tmp_path / "bare.pth")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = net.eval()(x)
        for name in ("deit.pth", "bare.pth"):
            teacher = load_teacher(teacher_config(tmp_path / name), 5, CPU)
            torch.testing.assert_close(teacher(x), expected)


@pytest.mark.parametrize("case, match", [
    ("missing", "no such file"),
    ("garbage", "not a readable checkpoint"),
    ("no_state", "holds no state dict"),
    ("wrong_classes", "does not fit test_resnet with 7 classes"),
    ("unknown_model", "not a timm model"),
])
def test_bad_teacher_checkpoints_are_refused_naming_the_file(tmp_path, case, match):
    path = tmp_path / f"{case}.pth"
    name = "no_such_net" if case == "unknown_model" else "test_resnet"
    if case == "garbage":
        path.write_bytes(b"not a torch file")
    elif case == "no_state":
        torch.save({"model": [1, 2, 3]}, path)
    elif case in ("wrong_classes", "unknown_model"):
        torch.save({"model": tiny_cnn().state_dict()}, path)  # 5 classes
    with pytest.raises(ValueError, match=match) as err:
        load_teacher(teacher_config(path, name), 7, CPU)
    assert "distill.teacher" in str(err.value)


def test_no_teacher_checkpoint_at_all_says_where_deits_teacher_is():
    with pytest.raises(ValueError, match="needs distill.teacher_checkpoint.*regnety_160"):
        load_teacher(DistillConfig(kind="hard"), 1000, CPU)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_teacher_is_channels_last():
    teacher = prepare_for_inference(tiny_cnn(), torch.device("cuda"), "off")
    convs = [m.weight for m in teacher.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
