"""`fastdeit analyze`: token cosine per layer, disagreement between classifiers, JSON + PNG."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from fastdeit.cli import main
from fastdeit.config.load import build_config
from fastdeit.eval.analysis import (collect_predictions, prediction_disagreement, token_cosine_per_layer)
from fastdeit.eval.evaluate import evaluate
from fastdeit.train.checkpoint import load_checkpoint, save_checkpoint
from fastdeit.train.loop import train
from tests.train.conftest import CLASSES, tiny_overrides

DEPTH = 2


def tiny_distilled(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, num_classes=CLASSES, img_size=32,
                             patch_size=8, embed_dim=32, depth=DEPTH, num_heads=2).eval()


def random_loader(batches: int = 3, batch: int = 5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 3, 32, 32, generator=g), torch.randint(0, CLASSES, (batch,), generator=g))
            for _ in range(batches)]


# ---------------------------------------------------------------- token cosine


def test_identical_tokens_have_cosine_one_at_every_layer():
    model = tiny_distilled()
    with torch.no_grad():
        model.dist_token.copy_(model.cls_token)
        model.pos_embed[:, 1].copy_(model.pos_embed[:, 0])  # same input -> same output, block after block
    cos = token_cosine_per_layer(model, random_loader())
    assert list(cos) == ["embedding"] + [f"block{i + 1}" for i in range(DEPTH)] + ["norm"]
    for name, value in cos.items():
        assert value == pytest.approx(1.0, abs=1e-5), name


@pytest.mark.parametrize("dist_dims, expected", [((2, 3), 0.0), ((0, 2), 0.5), ((1, 0), -1.0)])
def test_token_cosine_follows_the_tokens_through_identity_blocks(dist_dims, expected):
    """Blocks whose residual branches output zero are identities, and zero-mean tokens pass the
    final LayerNorm (weight 1, bias 0) with their angle intact: every layer shows the set cosine."""
    model = tiny_distilled()
    dim = model.embed_dim
    with torch.no_grad():
        for block in model.blocks:
            for linear in (block.attn.proj, block.mlp.fc2):
                linear.weight.zero_()
                linear.bias.zero_()
        model.pos_embed[:, :2].zero_()
        model.norm.weight.fill_(1.0)
        model.norm.bias.zero_()
        cls = torch.zeros(dim)
        cls[0], cls[1] = 1.0, -1.0
        dist = torch.zeros(dim)
        dist[dist_dims[0]], dist[dist_dims[1]] = 1.0, -1.0
        model.cls_token.copy_(cls.view(1, 1, dim))
        model.dist_token.copy_(dist.view(1, 1, dim))
    cos = token_cosine_per_layer(model, random_loader())
    assert len(cos) == DEPTH + 2
    for name, value in cos.items():
        assert value == pytest.approx(expected, abs=1e-5), name


def test_token_cosine_refuses_a_model_without_distillation_token():
    torch.manual_seed(0)
    plain = timm.create_model("deit_tiny_patch16_224", num_classes=CLASSES, img_size=32, patch_size=8,
                              embed_dim=32, depth=DEPTH, num_heads=2)
    with pytest.raises(ValueError, match="no distillation token"):
        token_cosine_per_layer(plain, random_loader())


# ---------------------------------------------------------------- disagreement


def test_disagreement_matrix_matches_a_hand_count():
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    a = torch.tensor([0, 1, 2, 3, 0, 0])  # wrong at 5
    b = torch.tensor([1, 1, 2, 0, 0, 1])  # wrong at 0 and 3; differs from a at 0, 3, 5
    out = prediction_disagreement({"a": a, "b": b}, labels)
    assert out["names"] == ["ground_truth", "a", "b"] and out["samples"] == 6
    expected = [[0, 1 / 6, 2 / 6], [1 / 6, 0, 3 / 6], [2 / 6, 3 / 6, 0]]
    m = torch.tensor(out["matrix"], dtype=torch.float64)
    torch.testing.assert_close(m, torch.tensor(expected, dtype=torch.float64))
    assert torch.equal(m, m.T) and not m.diagonal().any()
    assert out["top1"] == {"a": pytest.approx(500 / 6), "b": pytest.approx(400 / 6)}


def test_disagreement_without_labels_and_of_unequal_lengths():
    out = prediction_disagreement({"a": torch.tensor([1, 2]), "b": torch.tensor([1, 3])})
    assert out["names"] == ["a", "b"] and out["matrix"] == [[0.0, 0.5], [0.5, 0.0]] and out["top1"] == {}
    with pytest.raises(ValueError, match="different lengths"):
        prediction_disagreement({"a": torch.tensor([1, 2]), "b": torch.tensor([1])})


def test_collected_heads_are_what_evaluate_and_timm_inference_give():
    model = tiny_distilled(seed=3)
    loader = random_loader(batches=4, batch=8, seed=2)
    baseline = tiny_distilled(seed=4)
    preds, labels, cos = collect_predictions(loader, model, torch.device("cpu"), baseline=baseline)
    assert list(preds) == ["baseline", "distilled_cls", "distilled_dist", "distilled_avg"]
    assert torch.equal(labels, torch.cat([y for _, y in loader]))
    with torch.no_grad():  # timm's VisionTransformerDistilled in eval mode averages the two heads
        inference = torch.cat([model(x).argmax(1) for x, _ in loader])
    assert torch.equal(preds["distilled_avg"], inference)
    top1 = prediction_disagreement(preds, labels)["top1"]
    ref = evaluate(model, loader, torch.device("cpu"), precision="fp32")
    assert top1["distilled_avg"] == pytest.approx(ref["top1"])
    assert top1["distilled_cls"] == pytest.approx(ref["top1_cls"])
    assert top1["distilled_dist"] == pytest.approx(ref["top1_dist"])
    assert cos == pytest.approx(token_cosine_per_layer(model, loader))


# ---------------------------------------------------------------- CLI on tiny trained checkpoints


@pytest.fixture(scope="module")
def tiny_runs(tiny_folders, tmp_path_factory):
    """A tiny plain DeiT (the baseline, also the teacher) and a tiny student distilled from it."""
    train_dir, _ = tiny_folders
    base = tmp_path_factory.mktemp("analysis")
    short = ("schedule.epochs=1", "schedule.warmup_epochs=0")
    train(build_config("deit_ti_300ep", overrides=tiny_overrides(train_dir, None, base / "plain", *short)))
    plain = base / "plain" / "checkpoint.pt"
    overrides = tiny_overrides(train_dir, None, base / "distilled", *short,
                               "model.name=deit_tiny_distilled_patch16_224", "distill.kind=hard",
                               "distill.teacher=deit_tiny_patch16_224", f'distill.teacher_checkpoint="{plain}"')
    train(build_config("deit_ti_distilled_300ep", overrides=overrides))
    return plain, base / "distilled" / "checkpoint.pt"


def test_cli_writes_json_and_png(tiny_runs, tiny_folders, tmp_path, capsys):
    plain, distilled = tiny_runs
    _, val_dir = tiny_folders
    out = tmp_path / "out"
    assert main(["analyze", "--checkpoint", str(distilled), "--val", str(val_dir), "--teacher", str(plain),
                 "--baseline", str(plain), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "disagreement" in printed and "block2" in printed and "distilled_avg" in printed
    assert sorted(p.name for p in out.iterdir()) == ["analysis.json", "analysis.png"]  # no temp files left
    assert (out / "analysis.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((out / "analysis.json").read_text())
    assert {"checkpoint", "teacher", "teacher_model", "baseline", "samples", "token_cosine", "top1",
            "disagreement"} <= result.keys()
    assert result["checkpoint"] == str(distilled) and result["teacher"] == str(plain)
    assert result["teacher_model"] == "deit_tiny_patch16_224"  # read from the fastdeit checkpoint
    assert result["samples"] == 48
    tc = result["token_cosine"]
    assert tc["layers"] == ["embedding", "block1", "block2", "norm"] and len(tc["cosine"]) == DEPTH + 2
    assert all(-1 <= c <= 1 for c in tc["cosine"])
    names = result["disagreement"]["names"]
    assert names == ["ground_truth", "baseline", "teacher", "distilled_cls", "distilled_dist", "distilled_avg"]
    m = torch.tensor(result["disagreement"]["matrix"])
    assert m.shape == (6, 6) and torch.equal(m, m.T) and not m.diagonal().any()
    # the teacher and the baseline are the same weights: they never disagree
    assert m[names.index("baseline"), names.index("teacher")] == 0
    for name in names[1:]:  # the ground-truth row is the error rate
        assert m[0, names.index(name)].item() == pytest.approx(1 - result["top1"][name] / 100, abs=1e-6)
    assert main(["eval", "--checkpoint", str(distilled), "--val", str(val_dir), "--json", "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["model"]
    assert result["top1"]["distilled_avg"] == pytest.approx(evaluated["top1"])
    assert result["top1"]["distilled_dist"] == pytest.approx(evaluated["top1_dist"])


def test_cli_teacher_from_a_timm_state_dict_and_from_the_recipe(tiny_runs, tiny_folders, tmp_path, capsys):
    plain, distilled = tiny_runs
    _, val_dir = tiny_folders
    torch.manual_seed(0)
    state = tmp_path / "teacher.pth"
    torch.save({"model": timm.create_model("test_resnet", num_classes=CLASSES).state_dict()}, state)
    assert main(["analyze", "--checkpoint", str(distilled), "--val", str(val_dir), "--teacher", str(state),
                 "--teacher-model", "test_resnet", "--out", str(tmp_path / "a"), "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["teacher_model"] == "test_resnet" and result["baseline"] is None
    assert result["disagreement"]["names"] == ["ground_truth", "teacher", "distilled_cls", "distilled_dist",
                                               "distilled_avg"]
    # no --teacher: the recipe's distill.teacher_checkpoint, if the file is there; --no-teacher: none
    assert main(["analyze", "--checkpoint", str(distilled), "--val", str(val_dir), "--out", str(tmp_path / "b"),
                 "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["teacher"] == str(plain)
    assert main(["analyze", "--checkpoint", str(distilled), "--val", str(val_dir), "--out", str(tmp_path / "c"),
                 "--json", "--no-teacher", "--device", "cpu"]) == 0
    assert "teacher" not in json.loads(capsys.readouterr().out)["disagreement"]["names"]


def test_cli_refuses_a_non_distilled_checkpoint_naming_it(tiny_runs, tiny_folders, capsys):
    plain, _ = tiny_runs
    _, val_dir = tiny_folders
    assert main(["analyze", "--checkpoint", str(plain), "--val", str(val_dir), "--no-teacher"]) == 2
    err = capsys.readouterr().err
    assert str(plain) in err and "not a distilled DeiT" in err and "--baseline" in err


def test_cli_refuses_a_baseline_with_other_classes(tiny_runs, tiny_folders, tmp_path, capsys):
    plain, distilled = tiny_runs
    _, val_dir = tiny_folders
    blob = load_checkpoint(plain)
    other = tmp_path / "other.pt"
    save_checkpoint(other, {k: v for k, v in blob.items() if not k.startswith("format")} | {"num_classes": 10})
    assert main(["analyze", "--checkpoint", str(distilled), "--val", str(val_dir), "--baseline", str(other),
                 "--no-teacher"]) == 2
    err = capsys.readouterr().err
    assert str(other) in err and "10 classes" in err
