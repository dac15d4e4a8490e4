"""A PNG of loss, learning rate and accuracy curves from metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

from fastdeit.figures import pyplot, save_figure
from fastdeit.train.metrics import read_metrics


def plot_metrics(metrics_path: Path, out_png: Path) -> Path:
    plt = pyplot()
    records = read_metrics(metrics_path)
    steps = [r for r in records if r["kind"] == "step"]
    evals = [r for r in records if r["kind"] == "eval"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot([r["step"] for r in steps], [r["loss"] for r in steps])
    axes[0].set(title="train loss", xlabel="step")
    axes[1].plot([r["step"] for r in steps], [r["lr"] for r in steps])
    axes[1].set(title="learning rate", xlabel="step")
    for which in sorted({r.get("model", "model") for r in evals}):  # the model and its EMA
        rows = [r for r in evals if r.get("model", "model") == which]
        for key in sorted({k for r in rows for k in r if k.startswith("top1")}):
            axes[2].plot([r["epoch"] for r in rows if key in r], [r[key] for r in rows if key in r],
                         marker="o", label=f"{which} {key}")
    axes[2].set(title="validation accuracy (%)", xlabel="epoch")
    if evals:
        axes[2].legend()
    fig.tight_layout()
    return save_figure(fig, out_png)
