import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from fastdeit.config.schema import ModelConfig
from fastdeit.models import create_model, param_groups_for_weight_decay
from fastdeit.models.factory import is_distilled

TINY = dict(patch_size=8, embed_dim=32, depth=2, num_heads=2)
DEIT_MODELS = ["deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224",
               "deit_tiny_distilled_patch16_224", "deit_small_distilled_patch16_224",
               "deit_base_distilled_patch16_224"]


class CountSDPA(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.scaled_dot_product_attention:
            self.calls += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", DEIT_MODELS)
def test_models_build_with_data_classes_and_run(name):
    model = create_model(ModelConfig(name=name, **TINY), num_classes=7, img_size=32)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    assert model(x).shape == (2, 7)
    if is_distilled(model):
        model.train()
        model.set_distilled_training(True)
        cls, dist = model(x)
        assert cls.shape == dist.shape == (2, 7)


@pytest.mark.parametrize("name", ["deit_tiny_patch16_224", "deit_tiny_distilled_patch16_224"])
def test_attention_runs_through_fused_sdpa(name):
    model = create_model(ModelConfig(name=name, **TINY), num_classes=3, img_size=32)
    with CountSDPA() as counter:
        model(torch.randn(1, 3, 32, 32))
    assert counter.calls == TINY["depth"]  # one fused attention call per block, no eager softmax path


def test_full_size_architectures_are_the_papers():
    # Paper Table 1: Ti 5M / S 22M / B 86M parameters (embed 192/384/768, 12 blocks).
    counts = {n: sum(p.numel() for p in create_model(ModelConfig(name=n), 1000, 224).parameters())
              for n in DEIT_MODELS[:3]}
    assert round(counts["deit_tiny_patch16_224"] / 1e6) == 6  # 5.7M
    assert round(counts["deit_small_patch16_224"] / 1e6) == 22
    assert round(counts["deit_base_patch16_224"] / 1e6) == 87  # 86.6M


def test_init_is_truncated_normal():
    model = create_model(ModelConfig(name="deit_small_patch16_224"), 1000, 224)
    # timm init_weights_vit_timm: trunc_normal_(std=.02) on Linear weights (cut at +-2, i.e. 100
    # std: in effect a normal), zero biases; cls/pos tokens trunc_normal_ std .02 too.
    w = model.blocks[0].mlp.fc1.weight
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    assert torch.count_nonzero(model.blocks[0].mlp.fc1.bias) == 0
    assert abs(model.pos_embed.std().item() - 0.02) < 0.002


def test_no_weight_decay_on_biases_norms_and_tokens():
    model = create_model(ModelConfig(name="deit_tiny_distilled_patch16_224", **TINY), 5, 32)
    no_decay, decay = param_groups_for_weight_decay(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    skipped = {names[id(p)] for p in no_decay["params"]}
    assert {"pos_embed", "cls_token", "dist_token", "norm.weight", "blocks.0.attn.qkv.bias"} <= skipped
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert "blocks.0.attn.qkv.weight" in {names[id(p)] for p in decay["params"]}


def test_finetune_init_interpolates_position_embeddings(tmp_path):
    small = create_model(ModelConfig(name="deit_tiny_patch16_224", **TINY), 5, 32)
    path = tmp_path / "w.pt"
    torch.save({"model": small.state_dict()}, path)
    big = create_model(ModelConfig(name="deit_tiny_patch16_224", init_checkpoint=str(path), **TINY), 5, 48)
    assert big.pos_embed.shape == (1, 1 + 36, 32)
    torch.testing.assert_close(big.blocks[1].mlp.fc2.weight, small.blocks[1].mlp.fc2.weight)
    torch.testing.assert_close(big.cls_token, small.cls_token)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="model.name = 'deit_huge_thing'"):
        create_model(ModelConfig(name="deit_huge_thing"), 10, 224)


def test_convnet_builds_at_timm_architecture_for_any_image_size():
    # a convnet teacher (demo_teacher): no img_size, no ViT fields; global pooling takes any size
    model = create_model(ModelConfig(name="test_resnet", drop_path=0.0), num_classes=10, img_size=40).eval()
    assert model(torch.randn(2, 3, 40, 40)).shape == (2, 10)
    assert not is_distilled(model)
    no_decay, decay = param_groups_for_weight_decay(model, 0.05)
    assert all(p.ndim == 1 for p in no_decay["params"]) and all(p.ndim == 4 or p.ndim == 2 for p in decay["params"])


def test_vit_fields_on_a_convnet_are_a_clear_error():
    with pytest.raises(ValueError, match=r"model.patch_size = 8, model.embed_dim = 32.*only ViT/DeiT.*'test_resnet'"):
        create_model(ModelConfig(name="test_resnet", patch_size=8, embed_dim=32), 10, 40)
