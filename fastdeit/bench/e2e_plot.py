"""The end-to-end benchmark as a picture: where each step's time goes, and the projected hours.

Left: per preset and loader, the measured images/s split into the share of time spent computing
(device augmentation + step) and waiting for the loader. Right: the projected wall-clock hours of
300 epochs on an 8-GPU node from the measured per-device rate, beside the paper's 53 h for DeiT-B.
"""

from __future__ import annotations

from pathlib import Path

from fastdeit.bench.e2e import PAPER_HOURS_DEIT_B
from fastdeit.figures import pyplot, save_figure


def result_label(result: dict) -> str:
    return f"{result['preset'].removesuffix('_300ep')} / {result['loader']}"


def plot_e2e(results: list[dict], out_png: Path) -> Path:
    """Write the figure for one or more `fastdeit bench e2e` results (atomically); returns the path."""
    if not results:
        raise ValueError("plot_e2e: no e2e results to plot")
    plt = pyplot()

    labels = [result_label(r) for r in results]
    rate = [r["img_per_s"] for r in results]
    wait = [r["data_wait_share"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.6 * len(results) + 2.5))
    computing = [x * (1 - w) for x, w in zip(rate, wait)]
    left.barh(labels, computing, color="tab:blue", label="computing (augment + step)")
    left.barh(labels, [x - c for x, c in zip(rate, computing)], left=computing, color="tab:orange",
              label="waiting for data")
    for y, (x, w) in enumerate(zip(rate, wait)):
        left.text(x, y, f" {x:,.0f} img/s, {100 * w:.0f}% waiting", va="center", fontsize=8)
    left.set_xlabel("images/s per device (bar split by share of wall time)")
    left.set_xlim(0, max(rate) * 1.6)
    left.legend(loc="lower right", fontsize=8)
    left.set_title(f"end to end on {results[0]['device']}")
    hours = [(f"{p.removesuffix('_300ep')} ({result_label(r).split(' / ')[1]})", h)
             for r in results for p, h in r["projection_8gpu_hours"].items()]
    names = [n for n, _ in hours] + ["paper DeiT-B (8 V100)"]
    values = [h for _, h in hours] + [PAPER_HOURS_DEIT_B]
    right.barh(names, values, color=["tab:green"] * len(hours) + ["tab:gray"])
    for y, v in enumerate(values):
        right.text(v, y, f" {v:.1f} h", va="center", fontsize=8)
    right.set_xlim(0, max(values) * 1.25)
    right.set_xlabel("projected hours, 300 epochs on 8 such devices")
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=110)
