"""`fastdeit bench fidelity`: does the view-plan pipeline train as well as deit's own pipeline?

The same recipe (a preset, `demo` by default) trains on the same stored data through
`data.loader = reference` (timm/torchvision transforms, timm Mixup: deit's pipeline) and the
view-plan loaders (`cpu`, and `dali`: its CPU twin here) for K seeds each. Reported: the final
validation top-1 (and EMA top-1) per seed, mean, spread, a Welch two-sample t-test of each
view-plan loader against `reference`, and the stage-by-stage statistics of the same batches
(fidelity_stats.py), side by side.
"""

from __future__ import annotations

import json
import sys
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastdeit.bench.fidelity_data import build_dataset
from fastdeit.bench.fidelity_stats import collect, compare

LOADERS = ("reference", "cpu", "dali")


@dataclass
class FidelitySettings:
    """What one `bench fidelity` run does (the CLI fills it; `tiny()` is the CI size)."""

    dataset: str = "digits"  # digits | demo (fidelity_data.py)
    preset: str = "demo"  # issue 17: `fastdeit train --preset demo`, only data.loader changed
    loaders: tuple[str, ...] = LOADERS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    epochs: int = 0  # 0 = the preset's (demo: 150)
    max_steps: int = 0  # 0 = the whole schedule (run.max_steps)
    stats_steps: int = 20  # global steps of epoch 0 measured stage by stage (digits: one epoch, 1,280 views)
    overrides: list[str] = field(default_factory=list)  # extra --set key=value for every run
    cache: str = ""  # where the data sets are built; empty = fastdeit's cache dir
    out: str = ""  # run directories; empty = a temporary directory, removed afterwards
    train: bool = True  # False: the stage statistics and the replay only (--no-train)

    @classmethod
    def tiny(cls, dataset: str = "digits", loaders: tuple[str, ...] = LOADERS) -> "FidelitySettings":
        """K = 1, 4 steps (256 views; the demo's 2 warm-up epochs kept), stats over 3 steps (192 views)."""
        return cls(dataset=dataset, loaders=loaders, seeds=(0,), epochs=2, max_steps=4, stats_steps=3,
                   overrides=["run.eval_every=1", "data.workers=1"])


def default_cache() -> Path:
    from fastdeit.data.demo import default_root

    return default_root().parent / "fidelity"


def check_settings(s: FidelitySettings) -> None:
    for loader in s.loaders:
        if loader not in LOADERS:
            raise ValueError(f"--loaders: unknown loader {loader!r}; expected some of {', '.join(LOADERS)}")
    if "reference" not in s.loaders:
        raise ValueError("--loaders must include reference: it is what the others are compared with")
    if not s.seeds:
        raise ValueError("--seeds must be at least 1")
    if s.epochs < 0 or s.max_steps < 0 or s.stats_steps < 0:
        raise ValueError("--epochs, max steps and stats steps must be >= 0")


def run_config(settings: FidelitySettings, data: Any, loader: str, seed: int, out: Path) -> Any:
    """The TrainConfig of one run: the preset, only data.loader and run.seed changed (issue 17)."""
    from fastdeit.config.load import build_config

    sets = [f"data.train={json.dumps(str(data.train))}", f"data.val={json.dumps(str(data.val))}",
            f"data.loader={loader}", f"run.seed={seed}", f"run.out={json.dumps(str(out))}",
            "run.progress=none", "run.plot=false", "run.device=cpu", *settings.overrides]
    if settings.epochs:
        sets.append(f"schedule.epochs={settings.epochs}")
    if settings.max_steps:
        sets.append(f"run.max_steps={settings.max_steps}")
    return build_config(settings.preset, None, sets)


def train_once(settings: FidelitySettings, data: Any, loader: str, seed: int, out: Path) -> dict[str, Any]:
    """One training run; returns final top-1, EMA top-1, the eval curve and the wall time.

    A run directory left by a stopped series (it holds a checkpoint) is resumed, not refused.
    """
    from fastdeit.train.loop import train

    config = run_config(settings, data, loader, seed, out)
    t0 = time.perf_counter()
    final = train(config, preset=settings.preset, resume=(out / "checkpoint.pt").exists())
    seconds = time.perf_counter() - t0
    curve = eval_curve(out / "metrics.jsonl")
    if "top1" not in final and curve:  # it had finished before the stop: its last evaluation
        final = {"top1": curve[-1].get("top1"), "ema": {"top1": curve[-1].get("ema_top1")}}
    return {"loader": loader, "seed": seed, "top1": final.get("top1"),
            "ema_top1": final.get("ema", {}).get("top1"), "seconds": round(seconds, 1),
            "curve": curve, "settings": series_key(settings)}


def series_key(settings: FidelitySettings) -> dict[str, Any]:
    """What makes two runs of one (loader, seed) the same run: a series in `--out` reuses a
    recorded run only when these match."""
    return {"dataset": settings.dataset, "preset": settings.preset, "epochs": settings.epochs,
            "max_steps": settings.max_steps, "overrides": list(settings.overrides)}


def recorded_runs(root: Path, settings: FidelitySettings) -> dict[tuple[str, int], dict[str, Any]]:
    """The finished runs of this series already in root/runs.jsonl, by (loader, seed)."""
    path = root / "runs.jsonl"
    if not path.exists():
        return {}
    done: dict[tuple[str, int], dict[str, Any]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a crash: that run is trained again
            print(f"fidelity: {path} line {number} is not JSON; ignored", file=sys.stderr)
            continue
        if rec.get("settings") == series_key(settings):
            done[(rec["loader"], int(rec["seed"]))] = rec
    return done


def eval_curve(path: Path) -> list[dict[str, Any]]:
    """[(epoch, top1, ema top1)] from a run's metrics.jsonl."""
    rows: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") != "eval":
            continue
        row = rows.setdefault(rec["epoch"], {"epoch": rec["epoch"]})
        row["ema_top1" if rec.get("model") == "ema" else "top1"] = rec["top1"]
    return [rows[e] for e in sorted(rows)]


def summarize(values: list[float]) -> dict[str, Any]:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return {"n": int(a.size), "mean": float(a.mean()) if a.size else math.nan,
            "std": float(a.std(ddof=1)) if a.size > 1 else math.nan,
            "min": float(a.min()) if a.size else math.nan, "max": float(a.max()) if a.size else math.nan}


def welch(a: list[float], b: list[float]) -> dict[str, Any]:
    """Welch's two-sample t-test (scipy) of b against a; p is two-sided. NaN below 2 samples each."""
    if len(a) < 2 or len(b) < 2:
        return {"t": math.nan, "p": math.nan, "note": "needs >= 2 seeds per loader"}
    from scipy import stats

    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(0.95)
    return {"t": float(res.statistic), "p": float(res.pvalue), "df": float(getattr(res, "df", math.nan)),
            "diff": float(np.mean(b) - np.mean(a)), "ci95": [float(ci.low), float(ci.high)]}


def run(settings: FidelitySettings) -> dict[str, Any]:
    """Train every (loader, seed), measure every loader's stages, and compare with `reference`."""
    from fastdeit.bench.machine import describe_machine

    check_settings(settings)
    data = build_dataset(settings.dataset, Path(settings.cache) if settings.cache else default_cache())
    for loader in settings.loaders:  # every run's config is valid before anything runs
        config = run_config(settings, data, loader, settings.seeds[0], Path("unused"))
    result: dict[str, Any] = {
        "benchmark": "fidelity", "dataset": settings.dataset, "preset": settings.preset,
        "loaders": list(settings.loaders), "seeds": list(settings.seeds), "epochs": settings.epochs or config.schedule.epochs,
        "max_steps": settings.max_steps, "overrides": settings.overrides, "machine": describe_machine(),
    }
    stats: dict[str, Any] = {}
    if settings.stats_steps:
        for loader in settings.loaders:
            stats[loader] = collect(loader, config.data, config.augment, data.train, seed=settings.seeds[0],
                                    steps=settings.stats_steps)
        result["stats"] = stats
        result["stats_diff"] = {k: compare(stats["reference"], v) for k, v in stats.items() if k != "reference"}
        from fastdeit.bench.fidelity_replay import replay

        result["replay"] = {k: replay(config.data, config.augment, data.train, seed=settings.seeds[0],
                                      steps=settings.stats_steps, loader=k) for k in settings.loaders if k != "reference"}
    runs: list[dict[str, Any]] = []
    if not settings.train:
        result["runs"], result["accuracy"] = [], {}
        return result
    with tempfile.TemporaryDirectory(prefix="fastdeit-fidelity-") as tmp:
        root = Path(settings.out) if settings.out else Path(tmp)
        done = recorded_runs(root, settings)
        reused = [key for key in done if key[0] in settings.loaders and key[1] in settings.seeds]
        if reused:
            print(f"fidelity: {len(reused)} finished run(s) of this series reused from {root / 'runs.jsonl'}",
                  file=sys.stderr)
        for seed in settings.seeds:  # seed-major: a stopped run still has every loader for its seeds
            for loader in settings.loaders:
                if (loader, seed) in done:
                    runs.append(done[(loader, seed)])
                    continue
                runs.append(train_once(settings, data, loader, seed, root / f"{loader}_s{seed}"))
                if settings.out:  # kept as it goes: a long series stopped midway keeps its runs
                    with open(root / "runs.jsonl", "a") as f:
                        f.write(json.dumps(runs[-1]) + "\n")
    result["runs"] = runs
    result["accuracy"] = accuracy_table(runs, settings.loaders)
    return result


def accuracy_table(runs: list[dict[str, Any]], loaders: tuple[str, ...]) -> dict[str, Any]:
    """Per loader: top-1 and EMA top-1 per seed, summary, and Welch's test against reference."""
    table: dict[str, Any] = {}
    for loader in loaders:
        mine = [r for r in runs if r["loader"] == loader]
        table[loader] = {"top1": {str(r["seed"]): r["top1"] for r in mine},
                         "ema_top1": {str(r["seed"]): r["ema_top1"] for r in mine},
                         "summary": summarize([r["top1"] for r in mine]),
                         "ema_summary": summarize([r["ema_top1"] for r in mine])}
    ref = [r["top1"] for r in runs if r["loader"] == "reference"]
    ref_ema = [r["ema_top1"] for r in runs if r["loader"] == "reference"]
    for loader in loaders:
        if loader != "reference":
            mine = [r for r in runs if r["loader"] == loader]
            table[loader]["welch_vs_reference"] = welch(ref, [r["top1"] for r in mine])
            table[loader]["welch_ema_vs_reference"] = welch(ref_ema, [r["ema_top1"] for r in mine])
    return table


# ----------------------------------------------------------------------------- text report


def _fmt(v: Any, digits: int = 1) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def report(result: dict[str, Any]) -> str:
    """The accuracy table, the stage statistics side by side and the replay, as Markdown."""
    if not result["accuracy"]:
        lines = [f"fidelity: {result['dataset']}, preset {result['preset']} (no training)"]
    else:
        lines = [f"fidelity: {result['dataset']}, preset {result['preset']}, {result['epochs']} epochs"
                 + (f" (max {result['max_steps']} steps)" if result["max_steps"] else "")
                 + f", seeds {result['seeds']}: final top-1 % (EMA)", ""]
        lines += accuracy_lines(result)
    if "stats" in result:
        lines += ["", "stage statistics (same data, epoch 0, seed %s):" % result["seeds"][0], ""]
        lines += stats_table(result["stats"])
    if result.get("replay"):
        lines += ["", "the plan's draws replayed through deit's code (share of values that differ, largest difference):", ""]
        lines += replay_table(result["replay"])
    return "\n".join(lines)


def accuracy_lines(result: dict[str, Any]) -> list[str]:
    seeds = [str(s) for s in result["seeds"]]
    lines = ["| data.loader | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std | Welch t, p vs reference |",
             "|---" * (len(seeds) + 4) + "|"]
    for loader, row in result["accuracy"].items():
        cells = [f"{_fmt(row['top1'].get(s))} ({_fmt(row['ema_top1'].get(s))})" for s in seeds]
        w = row.get("welch_vs_reference")
        test = "-" if w is None else f"{_fmt(w['t'], 2)}, {_fmt(w['p'], 3)}"
        lines.append(f"| {loader} | " + " | ".join(cells) + f" | {_fmt(row['summary']['mean'])} "
                     f"({_fmt(row['ema_summary']['mean'])}) | {_fmt(row['summary']['std'])} | {test} |")
    return lines


def replay_table(replays: dict[str, Any]) -> list[str]:
    stages = ("crop", "rand_augment", "normalize", "erase", "mix", "targets")
    out = ["| data.loader | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|"]
    for loader, r in replays.items():
        out.append(f"| {loader} | " + " | ".join(
            f"{r[s]['differing_share']:.4f} ({r[s]['max_abs_diff']:.3g})" for s in stages) + " |")
    return out


def stats_table(stats: dict[str, Any]) -> list[str]:
    loaders = list(stats)
    rows: list[tuple[str, list[float], int]] = []
    for stage in ("crop", "rand_augment", "erase", "mix"):
        rows.append((f"{stage}: pixel mean (ch 0)", [stats[k]["pixels"][stage]["mean"][0] for k in loaders], 3))
        rows.append((f"{stage}: pixel std (ch 0)", [stats[k]["pixels"][stage]["std"][0] for k in loaders], 3))
    for label, key, sub in (("crop area share", "crop", "area"), ("crop aspect", "crop", "aspect"),
                            ("RandAugment applied share", "rand_augment", "applied_share"),
                            ("erased share of images", "erase", "share"), ("erased area", "erase", "area"),
                            ("mix lambda", "mix", "lam"), ("cutmix share", "mix", "cutmix_share"),
                            ("target entropy", "targets", "entropy"), ("target top", "targets", "top"),
                            ("copies share a step", "copies", "share_step"),
                            ("copies share a group", "copies", "share_group")):
        rows.append((label, [stats[k][key][sub] for k in loaders], 3))
    ops = sorted({name for k in loaders for name in stats[k]["rand_augment"]["ops"]})
    for name in ops:
        entries = [stats[k]["rand_augment"]["ops"].get(name, {}) for k in loaders]
        rows.append((f"{name}: share", [e.get("share", 0.0) for e in entries], 4))
        if any("strength" in e for e in entries):
            rows.append((f"{name}: |arg - neutral|", [e.get("strength", math.nan) for e in entries], 3))
    out = ["| statistic | " + " | ".join(loaders) + " |", "|---" * (len(loaders) + 1) + "|"]
    out += [f"| {label} | " + " | ".join(_fmt(v, d) for v in values) + " |" for label, values, d in rows]
    return out
