import json

import pytest

from fastdeit.cli import main
from fastdeit.config.load import build_config, config_from_dict, config_to_dict
from fastdeit.config.presets import preset_names

REQUIRED_PRESETS = {
    "deit_ti_300ep", "deit_s_300ep", "deit_b_300ep", "deit_ti_distilled_300ep", "deit_s_distilled_300ep",
    "deit_b_distilled_300ep", "deit_b_384_finetune", "demo", "demo_distilled",
}


def test_all_required_presets_ship():
    assert REQUIRED_PRESETS <= set(preset_names())


@pytest.mark.parametrize("name", sorted(REQUIRED_PRESETS))
def test_every_preset_resolves_and_round_trips(name):
    config = build_config(name)
    assert config_from_dict(config_to_dict(config), "test") == config


def test_deit_b_recipe_matches_the_paper():
    c = build_config("deit_b_300ep")
    assert c.model.name == "deit_base_patch16_224"
    assert c.data.global_batch == 1024 and c.data.repeated_aug == 3 and c.data.img_size == 224
    assert c.optim.lr * c.data.global_batch / c.optim.lr_batch == pytest.approx(1e-3)
    assert (c.optim.eps, c.optim.betas, c.optim.weight_decay) == (1e-8, (0.9, 0.999), 0.05)
    assert (c.schedule.epochs, c.schedule.warmup_epochs, c.schedule.warmup_lr, c.schedule.min_lr) == (
        300, 5, 1e-6, 1e-5)
    a = c.augment
    assert (a.smoothing, a.mixup, a.cutmix, a.mixup_prob, a.mixup_switch_prob) == (0.1, 0.8, 1.0, 1.0, 0.5)
    assert a.auto_augment == "rand-m9-mstd0.5-inc1" and a.interpolation == "bicubic"
    assert (a.reprob, a.remode, a.recount) == (0.25, "pixel", 1)
    assert (c.model.drop_path, c.model.drop) == (0.1, 0.0)
    assert c.run.ema and c.run.ema_decay == 0.99996
    assert round(c.data.img_size / c.data.eval_crop_pct) == 256 and c.data.eval_interpolation == "bicubic"
    assert c.distill.kind == "none"


@pytest.mark.parametrize("size,full", [("ti", "tiny"), ("s", "small"), ("b", "base")])
def test_distilled_twins(size, full):
    c = build_config(f"deit_{size}_distilled_300ep")
    assert c.model.name == f"deit_{full}_distilled_patch16_224"
    assert (c.distill.kind, c.distill.teacher, c.distill.alpha, c.distill.tau) == ("hard", "regnety_160", 0.5, 1.0)
    plain = build_config(f"deit_{size}_300ep")
    assert c.optim == plain.optim and c.augment == plain.augment and c.schedule == plain.schedule


def test_finetune_preset_follows_deit_readme():
    c = build_config("deit_b_384_finetune")
    assert c.model.name == "deit_base_patch16_384" and c.data.img_size == 384
    assert (c.optim.lr, c.optim.weight_decay, c.schedule.epochs, c.schedule.min_lr) == (5e-6, 1e-8, 30, 5e-6)
    assert c.data.global_batch == 512


def test_set_overrides_are_typed():
    c = build_config("deit_s_300ep", overrides=["optim.lr=1e-3", "augment.scale=[0.5, 1]", "run.ema=false",
                                                 "data.train=some/dir", "data.workers=2"])
    assert c.optim.lr == 1e-3 and c.augment.scale == (0.5, 1.0) and c.run.ema is False
    assert c.data.train == "some/dir" and c.data.workers == 2


@pytest.mark.parametrize("override,message", [
    ("optim.lrr=1", "optim.lrr"),
    ("nosection.x=1", "nosection.x"),
    ("optim.lr=fast", "optim.lr"),
    ("data.workers=1.5", "data.workers"),
    ("run.ema=3", "run.ema"),
    ("augment.reprob=2", "augment.reprob"),
    ("data.loader=magic", "data.loader"),
    ("schedule.warmup_epochs=400", "schedule.warmup_epochs"),
    ("augment.scale=[0.5]", "augment.scale"),
    ("optim.lr", "key=value"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("[", r"\[")):
        build_config("deit_s_300ep", overrides=[override])


def test_config_file_overrides_preset_and_set_overrides_file(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[optim]\nlr = 2e-3\nweight_decay = 0.1\n[model]\ndrop_path = 0.2\n')
    c = build_config("deit_s_300ep", f, ["optim.lr=3e-3"])
    assert (c.optim.lr, c.optim.weight_decay, c.model.drop_path) == (3e-3, 0.1, 0.2)


def test_config_file_with_unknown_key_names_file_and_key(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[optim]\nlearning_rate = 1\n')
    with pytest.raises(ValueError, match=r"bad\.toml.*optim\.learning_rate"):
        build_config("deit_s_300ep", f)


def test_config_file_that_is_not_toml(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text('[optim\n')
    with pytest.raises(ValueError, match="broken.toml: not valid TOML"):
        build_config(None, f)


def test_cli_presets_show_json(capsys):
    assert main(["presets", "show", "deit_ti_distilled_300ep", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["model"]["name"] == "deit_tiny_distilled_patch16_224"
    assert table["distill"]["kind"] == "hard" and table["optim"]["betas"] == [0.9, 0.999]


def test_cli_reports_bad_key_without_traceback(capsys):
    assert main(["train", "--preset", "deit_s_300ep", "--set", "optim.nope=1"]) == 2
    err = capsys.readouterr().err
    assert "optim.nope" in err and "Traceback" not in err


def test_model_compile_accepts_the_booleans_of_older_configs_and_checkpoints():
    old = config_to_dict(build_config("demo"))
    old["model"]["compile"] = False  # a checkpoint written when model.compile was a bool
    assert config_from_dict(old, "checkpoint").model.compile == "off"
    assert build_config("demo", overrides=["model.compile=true"]).model.compile == "on"
    assert build_config("demo").model.compile == "auto"
    with pytest.raises(ValueError, match="model.compile"):
        build_config("demo", overrides=["model.compile=sometimes"])
