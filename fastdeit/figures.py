"""Matplotlib without a display, and PNGs written atomically (every figure fastdeit writes)."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend: works on headless training nodes and in CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_png: Path, dpi: int = 80) -> Path:
    """Write `fig` to a temporary name beside `out_png`, rename it into place, close the figure."""
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(out_png.stem + ".tmp.png")
    try:
        fig.savefig(tmp, dpi=dpi)
        tmp.replace(out_png)
    finally:
        pyplot().close(fig)
        tmp.unlink(missing_ok=True)
    return out_png
