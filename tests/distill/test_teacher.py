"""The online teacher's preparation: frozen, eval mode, compiled per distill.teacher_compile."""

import pytest
import timm
import torch

from fastdeit.config.load import build_config
from fastdeit.distill.teacher import prepare_for_inference

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
