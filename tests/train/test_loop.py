import json

import pytest
import torch

from fastdeit.cli import main
from fastdeit.config.load import build_config
from fastdeit.train.checkpoint import load_checkpoint
from fastdeit.train.loop import train
from fastdeit.train.metrics import read_metrics
from tests.train.conftest import tiny_overrides


@pytest.fixture(scope="module")
def trained_run(tiny_folders, tmp_path_factory):
    train_dir, val_dir = tiny_folders
    out = tmp_path_factory.mktemp("run")
    final = train(build_config("deit_ti_300ep", overrides=tiny_overrides(train_dir, val_dir, out)), "deit_ti_300ep")
    return out, final


def test_run_directory_holds_the_contract_outputs(trained_run):
    out, final = trained_run
    assert {"config.toml", "metrics.jsonl", "checkpoint.pt", "best.pt", "curves.png"} <= {p.name for p in out.iterdir()}
    records = read_metrics(out / "metrics.jsonl")
    steps = [r for r in records if r["kind"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, 9))  # 2 epochs x 256 samples / 64
    assert all({"epoch", "step", "loss", "lr", "img_per_s"} <= r.keys() for r in steps)
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [0, 1]
    evals = [r for r in records if r["kind"] == "eval"]
    assert {r["model"] for r in evals} == {"model", "ema"}
    assert all(0 <= r["top1"] <= r["top5"] <= 100 for r in evals)
    assert final["top1"] == evals[-2]["top1"] and final["samples"] == 48


def test_resolved_config_reloads_to_the_same_run(trained_run, tiny_folders):
    import tomllib

    out, _ = trained_run
    table = tomllib.loads((out / "config.toml").read_text())
    assert table["preset"] == "deit_ti_300ep" and table["model"]["embed_dim"] == 32
    assert table["augment"]["auto_augment"] == "rand-m9-mstd0.5-inc1"


def test_lr_follows_deit_per_epoch_schedule(trained_run):
    out, _ = trained_run
    lrs = [r["lr"] for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "step"]
    # deit_ti_300ep steps the lr per epoch as deit's main.py: with one warmup epoch, epochs 0 and 1
    # (4 steps each) both train at warmup_lr (tests/train/test_schedule.py checks every later epoch)
    assert lrs == pytest.approx([1e-6] * 8)


def test_eval_cli_matches_trainer(trained_run, tiny_folders, capsys):
    out, final = trained_run
    _, val_dir = tiny_folders
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt"), "--val", str(val_dir), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["model"]["top1"] == pytest.approx(final["top1"])
    assert results["ema"]["top1"] == pytest.approx(final["ema"]["top1"])


def test_resume_from_epoch_boundary_gives_identical_weights(tiny_folders, tmp_path):
    train_dir, val_dir = tiny_folders
    straight = tiny_overrides(train_dir, None, tmp_path / "straight")
    train(build_config("deit_ti_300ep", overrides=straight))
    interrupted = tiny_overrides(train_dir, None, tmp_path / "resumed")
    train(build_config("deit_ti_300ep", overrides=interrupted + ["run.max_steps=4"]))
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["step"] == 4
    train(build_config("deit_ti_300ep", overrides=interrupted), resume=True)
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert b["step"] == 8
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0, msg=key)
    for key in a["ema"]:
        torch.testing.assert_close(a["ema"][key], b["ema"][key], rtol=0, atol=0, msg=key)
    steps = [r["step"] for r in read_metrics(tmp_path / "resumed" / "metrics.jsonl") if r["kind"] == "step"]
    assert steps == list(range(1, 9))


def test_resume_refuses_a_checkpoint_of_another_recipe(trained_run, tiny_folders, tmp_path):
    out, _ = trained_run
    train_dir, val_dir = tiny_folders
    run = tmp_path / "other"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes())
    config = build_config("deit_ti_300ep", overrides=tiny_overrides(train_dir, None, run, "optim.weight_decay=0.1"))
    with pytest.raises(ValueError, match=r"another recipe.*optim\.weight_decay"):
        train(config, resume=True)


def test_resume_refuses_a_corrupt_checkpoint(trained_run, tiny_folders, tmp_path):
    out, _ = trained_run
    train_dir, _ = tiny_folders
    run = tmp_path / "corrupt"
    run.mkdir()
    data = (out / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        train(build_config("deit_ti_300ep", overrides=tiny_overrides(train_dir, None, run)), resume=True)


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--preset", "deit_ti_300ep", "--data", str(tmp_path / "nope")]) == 2
    assert "data.train: no such file or directory" in capsys.readouterr().err


def test_distilled_training_reports_each_head(trained_run, tiny_folders, tmp_path):
    teacher_ckpt, _ = trained_run
    train_dir, val_dir = tiny_folders
    overrides = tiny_overrides(train_dir, val_dir, tmp_path / "distilled", "model.name=deit_tiny_distilled_patch16_224",
                               "distill.kind=hard", "distill.teacher=deit_tiny_patch16_224",
                               f'distill.teacher_checkpoint="{teacher_ckpt / "best.pt"}"', "schedule.epochs=1",
                               "schedule.warmup_epochs=0")
    final = train(build_config("deit_ti_distilled_300ep", overrides=overrides))
    assert {"top1", "top1_cls", "top1_dist", "top5_cls", "top5_dist"} <= final.keys()


def test_distillation_without_teacher_checkpoint_says_what_to_set(tiny_folders, tmp_path):
    train_dir, _ = tiny_folders
    overrides = tiny_overrides(train_dir, None, tmp_path / "d", "model.name=deit_tiny_distilled_patch16_224")
    with pytest.raises(ValueError, match="distill.teacher_checkpoint"):
        train(build_config("deit_ti_distilled_300ep", overrides=overrides))


def test_tensorboard_event_files_on_request(tiny_folders, tmp_path):
    pytest.importorskip("tensorboard")
    train_dir, _ = tiny_folders
    overrides = tiny_overrides(train_dir, None, tmp_path / "tb", "run.tensorboard=true", "run.max_steps=2")
    train(build_config("deit_ti_300ep", overrides=overrides))
    events = list((tmp_path / "tb" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_gradient_clipping_bounds_the_update():
    from fastdeit.config.schema import DistillConfig, ModelConfig
    from fastdeit.models import create_model
    from fastdeit.train.step import StepContext, train_step

    model = create_model(ModelConfig(name="deit_tiny_patch16_224", patch_size=8, embed_dim=32, depth=1,
                                     num_heads=2, drop_path=0.0), 4, 32)
    grads_seen = []
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    opt.register_step_pre_hook(lambda o, a, k: grads_seen.append(
        torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))))
    ctx = StepContext(model=model, optimizer=opt, scaler=None, ema=None, teacher=None, distill=DistillConfig(),
                      precision="fp32", clip_grad=0.01, device=torch.device("cpu"))
    targets = torch.eye(4)[torch.tensor([0, 1, 2, 3])]
    train_step(ctx, torch.randn(4, 3, 32, 32) * 50, targets, lr=0.0)
    assert grads_seen[0].item() == pytest.approx(0.01, rel=1e-4)


def test_compiled_model_trains_and_saves_plain_weights(tiny_folders, tmp_path):
    train_dir, _ = tiny_folders
    overrides = tiny_overrides(train_dir, None, tmp_path / "compiled", "model.compile=on", "run.max_steps=1",
                               "model.depth=1")
    train(build_config("deit_ti_300ep", overrides=overrides))
    blob = load_checkpoint(tmp_path / "compiled" / "checkpoint.pt")
    assert blob["step"] == 1
    assert not any(k.startswith("_orig_mod") for k in blob["model"])  # loadable by an uncompiled model
    step = [r for r in read_metrics(tmp_path / "compiled" / "metrics.jsonl") if r["kind"] == "step"]
    assert len(step) == 1 and 0 < step[0]["loss"] < 10


@pytest.mark.parametrize("setting, compiled", [("auto", False), ("on", True), ("off", False)])
def test_compile_setting_compiles_model_and_loss_on_cpu_only_when_on(tiny_folders, tmp_path, setting, compiled):
    # model.compile = auto means CUDA only: on a CPU the compile time outweighs a short run's gain.
    from fastdeit.distill.loss import distillation_loss
    from fastdeit.train.distributed import init_distributed, shutdown_distributed
    from fastdeit.train.loop import Trainer

    train_dir, _ = tiny_folders
    config = build_config("deit_ti_300ep", overrides=tiny_overrides(train_dir, None, tmp_path / "c",
                                                                     f"model.compile={setting}"))
    try:
        trainer = Trainer(config, None, init_distributed("cpu"))
        assert isinstance(trainer.ddp_model, torch._dynamo.eval_frame.OptimizedModule) == compiled
        assert (trainer.step_context().loss_fn is not distillation_loss) == compiled
    finally:
        shutdown_distributed()


def test_compile_mode_is_validated(tiny_folders, tmp_path):
    train_dir, _ = tiny_folders
    with pytest.raises(ValueError, match="model.compile_mode"):
        build_config("deit_ti_300ep", overrides=tiny_overrides(train_dir, None, tmp_path, "model.compile_mode=fast"))
