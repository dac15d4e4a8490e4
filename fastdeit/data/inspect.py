"""Summaries of a `.beton` file (`fastdeit inspect`) and export of decoded samples."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from fastdeit.data.beton import BetonReader
from fastdeit.data.beton import layout as L
from fastdeit.data.image_io import jpeg_info

JPEG_CHECK_SAMPLES = 1000


def _stats(a: np.ndarray) -> dict:
    if len(a) == 0:
        return {"min": 0, "max": 0, "mean": 0.0, "median": 0.0}
    return {"min": int(a.min()), "max": int(a.max()), "mean": float(a.mean()), "median": float(np.median(a))}


def summarize(reader: BetonReader) -> dict:
    """Everything `inspect` reports, as plain JSON-able values."""
    n = len(reader)
    hist = np.bincount(reader.labels[reader.labels >= 0], minlength=reader.num_classes) if n else np.zeros(0, int)
    sizes = reader.sizes
    return {
        "path": str(reader.path),
        "file_bytes": reader.file_size,
        "fingerprint": reader.fingerprint,
        "format_version": reader.version,
        "page_size": reader.page_size,
        "num_samples": n,
        "fields": [{"name": nm, "type": L.TYPE_NAMES[t]} for nm, t in zip(reader.field_names, reader.field_types)],
        "image_field": reader.image_field,
        "label_field": reader.label_field,
        "num_jpeg": int(reader.is_jpeg.sum()),
        "num_raw": int(n - reader.is_jpeg.sum()),
        "num_classes": reader.num_classes,
        "label_histogram": [int(c) for c in hist],
        "samples_per_class": _stats(hist[hist > 0]) if len(hist) else _stats(hist),
        "width": _stats(reader.widths),
        "height": _stats(reader.heights),
        "bytes_per_sample": _stats(sizes),
        "data_bytes": int(sizes.sum()),
        "jpeg_check": jpeg_check(reader),
    }


def jpeg_check(reader: BetonReader, max_samples: int = JPEG_CHECK_SAMPLES) -> dict:
    """How many JPEG samples (up to max_samples, evenly spaced) are baseline 4:2:0, the kind
    nvJPEG's hardware decoder takes; the rest fall back to slower decoding paths."""
    idx = np.flatnonzero(reader.is_jpeg)
    if len(idx) > max_samples:
        idx = idx[np.linspace(0, len(idx) - 1, max_samples).astype(np.int64)]
    ok = bad = 0
    for i in idx:
        try:
            info = jpeg_info(reader.image_bytes(int(i)))
            comps = [c[1:] for c in info["components"]]
            good = info["baseline"] and comps in ([(2, 2), (1, 1), (1, 1)], [(1, 1)])
        except ValueError:
            good = False
        ok += good
        bad += not good
    return {"checked": ok + bad, "baseline_420": ok, "other": bad}


def format_summary(s: dict) -> str:
    """Human-readable text for `summarize`'s result."""

    def st(d: dict, unit: str = "") -> str:
        return f"min {d['min']}{unit}, median {d['median']:.0f}{unit}, mean {d['mean']:.1f}{unit}, max {d['max']}{unit}"

    fields = ", ".join(f"{f['name']} ({f['type']})" for f in s["fields"])
    hist = s["label_histogram"]
    lines = [
        f"file            {s['path']}",
        f"size            {s['file_bytes']:,} bytes ({s['file_bytes'] / 2**20:.1f} MiB), fingerprint {s['fingerprint']}",
        f"format          .beton version {s['format_version']} (FFCV 1.0.x), page size {s['page_size']:,}",
        f"samples         {s['num_samples']:,} ({s['num_jpeg']:,} JPEG, {s['num_raw']:,} raw)",
        f"fields          {fields}",
        f"classes         {s['num_classes']}; samples per class: {st(s['samples_per_class'])}",
        f"width           {st(s['width'], ' px')}",
        f"height          {st(s['height'], ' px')}",
        f"bytes/sample    {st(s['bytes_per_sample'])}; data {s['data_bytes'] / 2**20:.1f} MiB",
    ]
    jc = s["jpeg_check"]
    if jc["checked"]:
        lines.append(f"JPEG check      {jc['baseline_420']} of {jc['checked']} checked are baseline 4:2:0"
                     + (f"; {jc['other']} are not (slower GPU decoding)" if jc["other"] else ""))
    if hist:
        shown = hist if len(hist) <= 20 else hist[:20]
        more = f" ... ({len(hist) - 20} more classes)" if len(hist) > 20 else ""
        lines.append("label histogram " + " ".join(f"{i}:{c}" for i, c in enumerate(shown)) + more)
    return "\n".join(lines)


def export_samples(reader: BetonReader, n: int, out_dir: str | os.PathLike) -> list[Path]:
    """Write the first n samples, decoded, as PNG files `{index:06d}_label{label}.png`."""
    if n < 0:
        raise ValueError(f"--export N must be >= 0, got {n}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(min(n, len(reader))):
        p = out_dir / f"{i:06d}_label{int(reader.labels[i])}.png"
        Image.fromarray(reader.decode(i)).save(p)
        paths.append(p)
    return paths
