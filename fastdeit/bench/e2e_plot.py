"""The end-to-end benchmark as pictures and a table.

`plot_e2e`: per row (preset, loader, batch), images/s split by share of wall time into computing,
waiting for data and backpressure; right, the projected hours of 300 epochs on 8 such devices
(evaluation included) beside the paper's 53 h for DeiT-B.
`plot_same_gpu`: the same-GPU comparison, images/s per loader per model (one batch size).
`markdown_table`: that comparison as the table README and the results folder carry.
"""

from __future__ import annotations

from pathlib import Path

from fastdeit.bench.e2e import PAPER_HOURS_DEIT_B
from fastdeit.figures import pyplot, save_figure

MODEL_NAMES = {"deit_ti_300ep": "DeiT-Ti", "deit_s_300ep": "DeiT-S", "deit_b_300ep": "DeiT-B"}
LOADER_ORDER = ("reference (a: deit step)", "reference (b: fastdeit step)", "cpu", "dali")


def rows_of(result: dict) -> list[dict]:
    """The result's rows with its preset and device; a result recorded before rows existed
    (one row at the top level) becomes one row."""
    if "rows" in result:
        rows = result["rows"]
    else:  # the earlier single-row format: training-only hours per preset
        hours = list(result.get("projection_8gpu_hours", {}).values())
        rows = [{**result, "label": result.get("loader", "cpu"), "backpressure_share": 0.0,
                 **({"projection_8gpu": {"hours": hours[0]}} if hours else {})}]
    return [{"preset": result["preset"], "device": result["device"], **r} for r in rows]


def model_name(preset: str) -> str:
    return MODEL_NAMES.get(preset, preset.removesuffix("_300ep"))


def row_label(row: dict) -> str:
    return f"{model_name(row['preset'])} / {row['label']} / {row.get('batch', '?')}"


def plot_e2e(results: list[dict], out_png: Path) -> Path:
    """Write the figure for one or more `fastdeit bench e2e` results (atomically); returns the path."""
    rows = [r for result in results for r in rows_of(result)]
    if not rows:
        raise ValueError("plot_e2e: no e2e results to plot")
    plt = pyplot()
    labels = [row_label(r) for r in rows]
    rate = [r["img_per_s"] for r in rows]
    wait = [r["data_wait_share"] for r in rows]
    back = [r.get("backpressure_share", 0.0) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.45 * len(rows) + 2.5))
    computing = [x * (1 - w - b) for x, w, b in zip(rate, wait, back)]
    waiting = [x * w for x, w in zip(rate, wait)]
    left.barh(labels, computing, color="tab:blue", label="computing and hand-over")
    left.barh(labels, waiting, left=computing, color="tab:orange", label="waiting for data")
    left.barh(labels, [x * b for x, b in zip(rate, back)], left=[c + w for c, w in zip(computing, waiting)],
              color="tab:gray", label="backpressure (GPU behind)")
    for y, (x, w) in enumerate(zip(rate, wait)):
        left.text(x, y, f" {x:,.0f} img/s, {100 * w:.0f}% waiting", va="center", fontsize=8)
    left.set_xlabel("images/s per device (bar split by share of wall time)")
    left.set_xlim(0, max(rate) * 1.6)
    left.legend(loc="lower right", fontsize=8)
    left.set_title(f"end to end on {rows[0]['device']}")
    hours = [(row_label(r), r["projection_8gpu"]["hours"]) for r in rows if "projection_8gpu" in r]
    names = [n for n, _ in hours] + ["paper DeiT-B (8 V100)"]
    values = [h for _, h in hours] + [PAPER_HOURS_DEIT_B]
    right.barh(names, values, color=["tab:green"] * len(hours) + ["tab:gray"])
    for y, v in enumerate(values):
        right.text(v, y, f" {v:.1f} h", va="center", fontsize=8)
    right.set_xlim(0, max(values) * 1.25)
    right.set_xlabel("projected hours, 300 epochs on 8 such devices, evaluation included")
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=110)


def same_gpu_rows(results: list[dict], batch: int = 128) -> dict[tuple[str, str], dict]:
    """{(model, loader label): row} at per-GPU `batch`."""
    return {(model_name(r["preset"]), r["label"]): r for result in results for r in rows_of(result)
            if r.get("batch") == batch}


def _ordered(names) -> list[str]:
    names = set(names)
    return [n for n in LOADER_ORDER if n in names] + sorted(names - set(LOADER_ORDER))


def plot_same_gpu(results: list[dict], out_png: Path, batch: int = 128) -> Path:
    """Grouped bars: images/s per loader (bars) per model (groups), at per-GPU `batch`."""
    table = same_gpu_rows(results, batch)
    if not table:
        raise ValueError(f"plot_same_gpu: no e2e rows at per-GPU batch {batch}")
    plt = pyplot()
    models = [m for m in MODEL_NAMES.values() if any(k[0] == m for k in table)]
    models += sorted({k[0] for k in table} - set(models))
    loaders = _ordered(k[1] for k in table)
    width = 0.8 / len(loaders)
    fig, ax = plt.subplots(figsize=(2.2 * len(models) + 3, 4.5))
    for j, loader in enumerate(loaders):
        xs = [i + (j - (len(loaders) - 1) / 2) * width for i in range(len(models))]
        ys = [table[(m, loader)]["img_per_s"] if (m, loader) in table else 0.0 for m in models]
        ax.bar(xs, ys, width, label=loader)
        for x, y in zip(xs, ys):
            if y:
                ax.text(x, y, f"{y:,.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("images/s, end to end (one GPU)")
    device = next(iter(table.values()))["device"]
    ax.set_title(f"same GPU ({device}), per-GPU batch {batch}: deit's pipeline against fastdeit's loaders")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=110)


def markdown_table(results: list[dict], batch: int = 128) -> str:
    """| model | loader | img/s | x deit (a) | waiting | backpressure | cores busy | projected h |"""
    table = same_gpu_rows(results, batch)
    lines = ["| model | loader (step) | img/s | x deit's pipeline (a) | waiting for data | backpressure | "
             "cores busy | projected h, 300 ep on 8 GPUs (eval included) |", "|---|---|---|---|---|---|---|---|"]
    for model in [m for m in MODEL_NAMES.values() if any(k[0] == m for k in table)]:
        ref = table.get((model, LOADER_ORDER[0]))
        for loader in _ordered(k[1] for k in table if k[0] == model):
            r = table[(model, loader)]
            speedup = f"{r['img_per_s'] / ref['img_per_s']:.2f}x" if ref else "n/a"
            busy = "n/a" if r.get("cpu_cores_busy") is None else f"{r['cpu_cores_busy']:.1f}"
            hours = r.get("projection_8gpu", {}).get("hours")
            lines.append(f"| {model} | {loader} ({r.get('precision', '?')}{', compiled' if r.get('compiled') else ''}) "
                         f"| {r['img_per_s']:,.0f} | {speedup} | {100 * r['data_wait_share']:.1f}% | "
                         f"{100 * r.get('backpressure_share', 0.0):.1f}% | {busy} | "
                         f"{'n/a' if hours is None else f'{hours:.1f}'} |")
    return "\n".join(lines)
