"""The DeiT paper's analysis of distillation through attention (Touvron et al. 2021, sec. 5.1):

- cosine similarity between the class and distillation tokens, per layer: the learned token
  embeddings are nearly orthogonal (paper: 0.06), the outputs of the last layer nearly aligned
  (paper: 0.93);
- disagreement between classifiers: the fraction of validation images two predictors classify
  differently, pairwise, for the ground truth, a non-distilled model, the convnet teacher and the
  distilled student's class head, distillation head and their average.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from fastdeit.eval.evaluate import autocast_for, head_logits
from fastdeit.figures import pyplot, save_figure

PAPER_COSINE = {"embedding": 0.06, "last layer": 0.93}
# The paper's order (its disagreement table), names as analysis.json spells them.
PREDICTOR_ORDER = ("ground_truth", "baseline", "teacher", "distilled_cls", "distilled_dist", "distilled_avg")


def is_distilled_vit(model: nn.Module) -> bool:
    return all(hasattr(model, a) for a in ("head_dist", "dist_token", "cls_token", "blocks", "norm"))


def cosine_layer_names(model: nn.Module) -> list[str]:
    """`embedding` (the learned tokens), `block1`..`blockD`, `norm` (what the heads read)."""
    return ["embedding"] + [f"block{i + 1}" for i in range(len(model.blocks))] + ["norm"]


class TokenCosine:
    """Forward hooks summing, per layer, cos(x[:, 0], x[:, 1]) over the images seen."""

    def __init__(self, model: nn.Module):
        if not is_distilled_vit(model):
            raise ValueError(f"{type(model).__name__} has no distillation token")
        self.model = model
        self.names = cosine_layer_names(model)
        self.sums = torch.zeros(len(self.names) - 1, dtype=torch.float64)
        self.count = 0
        self.handles = []

    def __enter__(self) -> "TokenCosine":
        layers = list(self.model.blocks) + [self.model.norm]
        for i, layer in enumerate(layers):
            self.handles.append(layer.register_forward_hook(self._hook(i)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _hook(self, index: int):
        def hook(_module, _inputs, output):
            x = output.float()
            self.sums[index] += F.cosine_similarity(x[:, 0], x[:, 1], dim=-1).sum().double().cpu()
            if index == 0:
                self.count += x.shape[0]
        return hook

    def result(self) -> dict[str, float]:
        embedding = F.cosine_similarity(self.model.cls_token.detach().float().flatten(),
                                        self.model.dist_token.detach().float().flatten(), dim=0)
        values = [float(embedding)] + (self.sums / max(self.count, 1)).tolist()
        return dict(zip(self.names, values))


def _batches(loader: Iterable, device: torch.device):
    for images, labels in loader:
        yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


@torch.no_grad()
def token_cosine_per_layer(model: nn.Module, loader: Iterable, device: torch.device | str = "cpu",
                           precision: str = "fp32") -> dict[str, float]:
    """Mean over the loader's images of the cls/dist token cosine after each block (and the final
    norm); `embedding` is the cosine of the learned cls_token and dist_token parameters."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    with TokenCosine(model) as cos:
        for images, _ in _batches(loader, device):
            with autocast_for(device, precision):
                model.forward_features(images)
    model.train(was_training)
    return cos.result()


def prediction_disagreement(preds: dict[str, torch.Tensor],
                            labels: torch.Tensor | None = None) -> dict[str, object]:
    """Pairwise disagreement: matrix[i][j] = fraction of samples where predictors i and j differ
    (the ground truth, when `labels` is given, is the first predictor: its row is the error rate).
    top1: each predictor's accuracy in percent (needs labels)."""
    named = dict(preds)
    if labels is not None:
        named = {"ground_truth": labels, **{k: v for k, v in named.items() if k != "ground_truth"}}
    names = list(named)
    columns = [torch.as_tensor(named[n]).reshape(-1).cpu() for n in names]
    sizes = {len(c) for c in columns}
    if len(sizes) > 1:
        raise ValueError(f"predictions of different lengths: {dict(zip(names, map(len, columns)))}")
    n = sizes.pop() if sizes else 0
    stacked = torch.stack(columns) if columns else torch.zeros(0, 0, dtype=torch.long)
    differ = (stacked[:, None, :] != stacked[None, :, :]).double().sum(-1)
    matrix = (differ / max(n, 1)).tolist()
    top1 = {}
    if labels is not None:
        truth = columns[0]
        top1 = {name: 100.0 * float((col == truth).double().mean()) if n else 0.0
                for name, col in zip(names[1:], columns[1:])}
    return {"names": names, "matrix": matrix, "top1": top1, "samples": n}


@torch.no_grad()
def collect_predictions(loader: Iterable, student: nn.Module, device: torch.device, *,
                        teacher: nn.Module | None = None, baseline: nn.Module | None = None,
                        precision: str = "fp32") -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, float]]:
    """One pass over the loader: argmax predictions of the distilled student's cls / dist / avg heads
    (avg as deit's inference and `evaluate` compute it), of the teacher and the baseline when given,
    the labels, and the student's token cosine per layer (same pass, through hooks)."""
    models = {"student": student, "teacher": teacher, "baseline": baseline}
    modes = {k: m.training for k, m in models.items() if m is not None}
    for m in models.values():
        if m is not None:
            m.eval()
    preds: dict[str, list[torch.Tensor]] = {}
    labels_seen = []
    with TokenCosine(student) as cos:
        for images, labels in _batches(loader, device):
            with autocast_for(device, precision):
                heads = head_logits(student, images)
                outputs = {"distilled_cls": heads["_cls"], "distilled_dist": heads["_dist"],
                           "distilled_avg": heads[""]}
                if teacher is not None:
                    outputs["teacher"] = teacher(images)
                if baseline is not None:
                    outputs["baseline"] = head_logits(baseline, images)[""]
            for name, logits in outputs.items():
                preds.setdefault(name, []).append(logits.float().argmax(1).cpu())
            labels_seen.append(labels.cpu())
    for k, mode in modes.items():
        models[k].train(mode)
    ordered = {n: torch.cat(preds[n]) for n in PREDICTOR_ORDER if n in preds}
    labels_all = torch.cat(labels_seen) if labels_seen else torch.zeros(0, dtype=torch.long)
    return ordered, labels_all, cos.result()


# ---------------------------------------------------------------- checkpoints -> analysis.json/png


def _load_student(path: Path, which: str):
    from fastdeit.eval.run import model_from_checkpoint, read_checkpoint

    blob, config = read_checkpoint(path)
    model = model_from_checkpoint(blob, config, which)
    if model is None:
        raise ValueError(f"checkpoint {path} holds no {which!r} weights")
    if not is_distilled_vit(model):
        raise ValueError(f"checkpoint {path} holds a {config.model.name!r}, not a distilled DeiT "
                         "(deit_*_distilled_*, with a distillation token): pass it as --baseline, "
                         "and a distilled checkpoint as --checkpoint")
    return blob, config, model


def _load_baseline(path: Path, which: str, num_classes: int, img_size: int) -> nn.Module:
    from fastdeit.eval.run import model_from_checkpoint, read_checkpoint

    blob, config = read_checkpoint(path)
    if blob["num_classes"] != num_classes:
        raise ValueError(f"--baseline {path} was trained on {blob['num_classes']} classes, "
                         f"the distilled checkpoint on {num_classes}")
    if config.data.img_size != img_size:
        raise ValueError(f"--baseline {path} was trained at {config.data.img_size} px, "
                         f"the distilled checkpoint at {img_size} px")
    model = model_from_checkpoint(blob, config, which)
    if model is None:
        raise ValueError(f"--baseline {path} holds no {which!r} weights")
    return model


def teacher_model_name(path: Path, explicit: str | None, recipe_teacher: str) -> str:
    """--teacher-model if given, else the model a fastdeit checkpoint records, else the recipe's teacher."""
    if explicit:
        return explicit
    from fastdeit.train.checkpoint import is_fastdeit_checkpoint
    from fastdeit.train.safe_load import TRAINING_SCRIPT_GLOBALS, safe_torch_load

    try:
        blob = safe_torch_load(path, "--teacher", allow=TRAINING_SCRIPT_GLOBALS)
    except ValueError:  # load_teacher reports unreadable and unsafe files
        return recipe_teacher
    if is_fastdeit_checkpoint(blob):
        return blob.get("config", {}).get("model", {}).get("name", recipe_teacher)
    return recipe_teacher


def _load_teacher(path: Path, model_name: str, num_classes: int, device: torch.device) -> nn.Module:
    from fastdeit.config.schema import DistillConfig
    from fastdeit.distill.teacher import load_teacher

    # one pass over the val set: compiling the teacher would cost more than it saves
    cfg = DistillConfig(kind="hard", teacher=model_name, teacher_checkpoint=str(path), teacher_compile="off")
    try:
        return load_teacher(cfg, num_classes, device)
    except ValueError as err:
        raise ValueError(f"--teacher {path}: {err}") from None


def run_analysis(checkpoint: Path, val: str, *, teacher: Path | None = None, teacher_model: str | None = None,
                 baseline: Path | None = None, device_name: str = "auto", weights: str = "model") -> dict:
    """Everything analysis.json holds, for a distilled checkpoint (and optional teacher, baseline)."""
    from fastdeit.eval.run import checkpoint_val_loader
    from fastdeit.train.distributed import resolve_device

    checkpoint = Path(checkpoint)
    device = resolve_device(device_name, 0)
    blob, config, student = _load_student(checkpoint, weights)
    num_classes = blob["num_classes"]
    base = _load_baseline(Path(baseline), weights, num_classes, config.data.img_size) if baseline else None
    teacher_name = None
    if teacher:
        teacher = Path(teacher)
        teacher_name = teacher_model_name(teacher, teacher_model, config.distill.teacher)
    precision = config.run.precision
    loader = checkpoint_val_loader(config, val, checkpoint, num_classes)
    tmodel = _load_teacher(teacher, teacher_name, num_classes, device) if teacher else None
    student.to(device)
    if base is not None:
        base.to(device)
    preds, labels, cosine = collect_predictions(loader, student, device, teacher=tmodel, baseline=base,
                                                precision=precision)
    disagreement = prediction_disagreement(preds, labels)
    return {
        "checkpoint": str(checkpoint),
        "model": config.model.name,
        "weights": weights,
        "teacher": str(teacher) if teacher else None,
        "teacher_model": teacher_name,
        "baseline": str(baseline) if baseline else None,
        "val": val,
        "samples": disagreement["samples"],
        "token_cosine": {"layers": list(cosine), "cosine": list(cosine.values()), "paper": PAPER_COSINE},
        "top1": disagreement["top1"],
        "disagreement": {"names": disagreement["names"], "matrix": disagreement["matrix"]},
    }


def format_table(result: dict) -> str:
    lines = [f"{result['samples']} validation images, {result['model']} ({result['weights']} weights)", "",
             "cls/dist token cosine per layer (paper: 0.06 embedding, 0.93 last layer)"]
    tc = result["token_cosine"]
    lines += [f"  {name:<10} {value:7.3f}" for name, value in zip(tc["layers"], tc["cosine"])]
    lines += ["", "top-1 (%)"]
    lines += [f"  {name:<15} {value:6.2f}" for name, value in result["top1"].items()]
    names = result["disagreement"]["names"]
    width = max(15, *(len(n) for n in names))
    lines += ["", "disagreement (fraction of images classified differently)",
              " " * (width + 2) + "".join(f"{n[:width]:>{width + 1}}" for n in names)]
    for name, row in zip(names, result["disagreement"]["matrix"]):
        lines.append(f"  {name:<{width}}" + "".join(f"{v:>{width + 1}.3f}" for v in row))
    return "\n".join(lines)


def plot_analysis(result: dict, out_png: Path) -> Path:
    plt = pyplot()

    tc = result["token_cosine"]
    names = result["disagreement"]["names"]
    matrix = torch.tensor(result["disagreement"]["matrix"]).numpy() * 100
    fig, axes = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [1.2, 1]})
    xs = list(range(len(tc["layers"])))
    axes[0].plot(xs, tc["cosine"], marker="o", label="this model")
    axes[0].axhline(PAPER_COSINE["embedding"], color="grey", ls="--", lw=1)
    axes[0].axhline(PAPER_COSINE["last layer"], color="grey", ls=":", lw=1)
    axes[0].plot([0], [PAPER_COSINE["embedding"]], "x", color="tab:red", ms=9, label="paper: embedding 0.06")
    axes[0].plot([xs[-1]], [PAPER_COSINE["last layer"]], "x", color="tab:green", ms=9,
                 label="paper: last layer 0.93")
    step = max(1, len(xs) // 14)
    axes[0].set_xticks(xs[::step], tc["layers"][::step], rotation=45, ha="right")
    axes[0].set(title="cosine(class token, distillation token) per layer", ylabel="mean cosine",
                ylim=(min(-0.1, min(tc["cosine"]) - 0.05), 1.05))
    axes[0].legend(loc="lower right")
    im = axes[1].imshow(matrix, cmap="viridis", vmin=0)
    axes[1].set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes[1].set_yticks(range(len(names)), names)
    high = matrix.max() if matrix.size else 0
    for i in range(len(names)):
        for j in range(len(names)):
            axes[1].text(j, i, f"{matrix[i, j]:.1f}%", ha="center", va="center", fontsize=8,
                         color="black" if matrix[i, j] > 0.6 * high else "white")
    axes[1].set_title(f"disagreement (% of {result['samples']} images)")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    fig.tight_layout()
    return save_figure(fig, out_png)


def write_analysis(result: dict, out_dir: Path) -> tuple[Path, Path]:
    """analysis.json and analysis.png in out_dir, each written under a temporary name then renamed."""
    import json
    import os

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "analysis.json"
    tmp = out_dir / "analysis.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, json_path)
    return json_path, plot_analysis(result, out_dir / "analysis.png")
