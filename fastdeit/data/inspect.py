"""Summaries of a `.beton` file (`fastdeit inspect`) and export of decoded samples."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from fastdeit.data.beton import BetonReader
from fastdeit.data.beton import layout as L
from fastdeit.data.image_io import jpeg_info
from fastdeit.data.labels import MAX_CLASSES, bad_label_indices, label_error

JPEG_CHECK_SAMPLES = 1000
BAD_LISTED = 20  # bad samples listed by index (all are counted)


def _stats(a: np.ndarray) -> dict:
    if len(a) == 0:
        return {"min": 0, "max": 0, "mean": 0.0, "median": 0.0}
    return {"min": int(a.min()), "max": int(a.max()), "mean": float(a.mean()), "median": float(np.median(a))}


def label_report(reader: BetonReader, max_listed: int = BAD_LISTED) -> dict:
    """Samples whose label is not a class index (negative, or beyond MAX_CLASSES): the count and
    the first few as {index, label, problem}."""
    bad = bad_label_indices(reader.labels)
    return {
        "num_bad": int(len(bad)),
        "bad": [{"index": int(i), "label": int(reader.labels[i]), "problem": label_error(int(reader.labels[i]))}
                for i in bad[:max_listed]],
    }


def verify_samples(reader: BetonReader, max_listed: int = BAD_LISTED) -> dict:
    """Decode every sample (`inspect --verify`): the count of those that fail and the first few as
    {index, error}."""
    bad = []
    num_bad = 0
    for i in range(len(reader)):
        try:
            reader.decode(i)
        except ValueError as err:
            num_bad += 1
            if len(bad) < max_listed:
                bad.append({"index": i, "error": str(err).removeprefix(f"{reader.path}: sample {i}: ")})
    return {"checked": len(reader), "num_bad": num_bad, "bad": bad}


def summarize(reader: BetonReader, verify: bool = False) -> dict:
    """Everything `inspect` reports, as plain JSON-able values (with `verify`, every sample decoded)."""
    n = len(reader)
    labels = reader.labels
    good = labels[(labels >= 0) & (labels < MAX_CLASSES)]
    num_classes = int(good.max()) + 1 if len(good) else 0
    hist = np.bincount(good, minlength=num_classes) if len(good) else np.zeros(0, int)
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
        "num_classes": num_classes,
        "labels": label_report(reader),
        "label_histogram": [int(c) for c in hist],
        "samples_per_class": _stats(hist[hist > 0]) if len(hist) else _stats(hist),
        "width": _stats(reader.widths),
        "height": _stats(reader.heights),
        "bytes_per_sample": _stats(sizes),
        "data_bytes": int(sizes.sum()),
        "jpeg_check": jpeg_check(reader),
        **({"verify": verify_samples(reader)} if verify else {}),
    }


def has_problems(summary: dict) -> bool:
    """Bad labels, corrupt JPEG headers, or (with --verify) samples that do not decode."""
    return bool(summary["labels"]["num_bad"] or summary["jpeg_check"]["corrupt"]
                or summary.get("verify", {}).get("num_bad"))


def jpeg_check(reader: BetonReader, max_samples: int = JPEG_CHECK_SAMPLES) -> dict:
    """How many JPEG samples (up to max_samples, evenly spaced) are baseline 4:2:0, the kind
    nvJPEG's hardware decoder takes; the rest fall back to slower decoding paths."""
    idx = np.flatnonzero(reader.is_jpeg)
    if len(idx) > max_samples:
        idx = idx[np.linspace(0, len(idx) - 1, max_samples).astype(np.int64)]
    ok = other = 0
    corrupt = []
    for i in idx:
        try:
            info = jpeg_info(reader.image_bytes(int(i)))
        except ValueError as err:  # no SOI marker, no frame header: not a decodable JPEG at all
            corrupt.append({"index": int(i), "error": str(err)})
            continue
        comps = [c[1:] for c in info["components"]]
        good = info["baseline"] and comps in ([(2, 2), (1, 1), (1, 1)], [(1, 1)])
        ok += good
        other += not good
    return {"checked": ok + other + len(corrupt), "baseline_420": ok, "other": other, "corrupt": len(corrupt),
            "corrupt_samples": corrupt[:BAD_LISTED]}


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
    for c in jc["corrupt_samples"]:
        lines.append(f"CORRUPT         {s['path']}: sample {c['index']}: {c['error']}")
    lab = s["labels"]
    for b in lab["bad"]:
        lines.append(f"BAD LABEL       {s['path']}: sample {b['index']}: {b['problem']}")
    if lab["num_bad"] > len(lab["bad"]):
        lines.append(f"BAD LABEL       ... {lab['num_bad'] - len(lab['bad'])} more samples with bad labels")
    if "verify" in s:
        v = s["verify"]
        lines.append(f"verify          decoded all {v['checked']:,} samples: "
                     + (f"{v['num_bad']} do not decode" if v["num_bad"] else "all decode"))
        for b in v["bad"]:
            lines.append(f"CORRUPT         {s['path']}: sample {b['index']}: {b['error']}")
        if v["num_bad"] > len(v["bad"]):
            lines.append(f"CORRUPT         ... {v['num_bad'] - len(v['bad'])} more samples that do not decode")
    if hist:
        shown = hist if len(hist) <= 20 else hist[:20]
        more = f" ... ({len(hist) - 20} more classes)" if len(hist) > 20 else ""
        lines.append("label histogram " + " ".join(f"{i}:{c}" for i, c in enumerate(shown)) + more)
    return "\n".join(lines)


def export_samples(reader: BetonReader, n: int, out_dir: str | os.PathLike) -> list[Path]:
    """Write the first n samples, decoded, as PNG files `{index:06d}_label{label}.png`; a sample that
    does not decode is written as its stored bytes, `{index:06d}_label{label}.corrupt.jpg`, to look at."""
    if n < 0:
        raise ValueError(f"--export N must be >= 0, got {n}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(min(n, len(reader))):
        stem = f"{i:06d}_label{int(reader.labels[i])}"
        try:
            image = reader.decode(i)
        except ValueError:
            p = out_dir / f"{stem}.corrupt.jpg"
            p.write_bytes(reader.image_bytes(i).tobytes())
        else:
            p = out_dir / f"{stem}.png"
            Image.fromarray(image).save(p)
        paths.append(p)
    return paths
