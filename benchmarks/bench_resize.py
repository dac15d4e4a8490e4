"""One decode thread's work per image, split: the chunk kernel, its Pillow-exact resize alone, and Pillow.

Times, on one thread, for the view plan's 224 px crops of each data set:
- fastdeit chunk kernel: region decode at the DCT scale + Pillow-exact resize + flip, one compiled
  call per 64-image batch (what a CpuLoader decode thread runs);
- fastdeit resize alone: `resize_crop` on the full-resolution crops, decoded beforehand;
- Pillow: `Image.fromarray(crop).resize((224, 224), BICUBIC)` on the same crops (deit's
  resized_crop after the crop; the pixels the resize must equal).
Rounds are interleaved; the table gives the median and the worst (slowest) round in us per image.

    python benchmarks/bench_resize.py [--max-res 256 512] [--images 512] [--data FILE.beton ...]
        [--rounds 5] [--json benchmarks/results/resize_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fastdeit.bench.machine import describe_machine
from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.cpu_decoder import CpuDecoder
from fastdeit.data.plan import PlanConfig
from fastdeit.data.plan_stream import PlanStream
from fastdeit.data.sample_images import photo_crops
from fastdeit.kernels.resize import resize_crop

SIZE, BATCH = 224, 64


def photo_beton(path: Path, n: int, max_res: int) -> Path:
    """n crops of real photographs at ImageNet's typical 500x375, stored at max side max_res."""
    with BetonWriter(path, "jpg", max_resolution=max_res, jpeg_quality=90) as w:
        for k, img in enumerate(photo_crops(n, (500, 375), seed=0)):
            w.add(img, k % 10)
    return path


def time_set(beton: Path, rounds: int) -> dict:
    reader = BetonReader(beton)
    cfg = PlanConfig(img_size=SIZE, global_batch=BATCH, mix_group=BATCH, repeated_aug=1, epoch_multiple=1)
    stream = PlanStream.for_reader(reader, cfg)
    plans = [stream.plan(0, s) for s in range(stream.steps)]
    crops = []
    for plan in plans:
        for i, (top, left, h, w), flip in zip(plan.indices, plan.crop, plan.flip):
            crops.append((np.ascontiguousarray(reader.decode(int(i))[top:top + h, left:left + w]), bool(flip)))
    batch = np.empty((BATCH, SIZE, SIZE, 3), dtype=np.uint8)
    out = np.empty((SIZE, SIZE, 3), dtype=np.uint8)

    def kernel() -> None:
        for plan in plans:
            decoder.decode_on_this_thread(plan, batch)

    def resize_alone() -> None:
        for crop, flip in crops:
            resize_crop(crop, (0, 0, crop.shape[1], crop.shape[0]), out, flip)

    def pillow() -> None:
        for crop, flip in crops:
            img = Image.fromarray(crop).resize((SIZE, SIZE), Image.BICUBIC)
            if flip:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)

    with CpuDecoder(reader, threads=1) as decoder:
        runs = {"fastdeit chunk kernel (decode + resize + flip)": kernel,
                "fastdeit resize alone (Pillow-exact)": resize_alone,
                "Pillow resize (deit's, after the crop)": pillow}
        times: dict[str, list[float]] = {name: [] for name in runs}
        for fn in runs.values():
            fn()  # warm-up: numba's cache, the page cache
        for _ in range(rounds):
            for name, fn in runs.items():
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) / len(crops) * 1e6)
    reader.close()
    return {"data": str(beton.name), "images": len(crops),
            "rows": [{"path": name, "us_per_image": round(float(np.median(t)), 1),
                      "us_per_image_worst_round": round(max(t), 1), "rounds": [round(x, 1) for x in t]}
                     for name, t in times.items()]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-res", type=int, nargs="*", default=[256, 512], help="generated photo crops, stored at these")
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--data", nargs="*", default=[], help="existing .beton files (e.g. benchmarks/small_photos.py's)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default="benchmarks/results/resize_cpu.json")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.images < BATCH:
        raise ValueError(f"--rounds must be >= 1 and --images >= {BATCH}")
    result = {"machine": describe_machine(), "command": " ".join(["python", "benchmarks/bench_resize.py"] + (sys.argv[1:] if argv is None else argv)),
              "sets": []}
    with tempfile.TemporaryDirectory() as tmp:
        sets = [photo_beton(Path(tmp) / f"photos_{m}.beton", args.images, m) for m in args.max_res]
        for beton in sets + [Path(d) for d in args.data]:
            s = time_set(beton, args.rounds)
            result["sets"].append(s)
            for r in s["rows"]:
                print(f"{s['data']:<28} {r['path']:<48} {r['us_per_image']:8.1f} us/img "
                      f"(worst round {r['us_per_image_worst_round']:.1f})", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
