"""GPU check for the DALI loader: DALI "mixed" decode images/s on one GPU for `.beton` files at
longest side 512 and 256, the hardware-decoder share swept over 0, 0.65, 0.9 and 1.0, beside
fastdeit's CPU loader on all the machine's cores (see fastdeit/bench/loader_dali.py for the task
and the timing rules). On CUDA it first region-decodes a few of the file's JPEGs in a child
process (fastdeit.data.dali_pipeline.probe_region_decode: nvImageCodec 0.9.0 is reported to crash
there, NVIDIA/nvImageCodec issue 55) and records the outcome; where it fails, DaliLoader decodes
whole images on the GPU and crops there, and the rows say so.

    python benchmarks/gpu_dali.py [--json PATH]                      # on a GPU machine
    python benchmarks/gpu_dali.py --device cpu --tiny --json PATH    # the CPU twin, seconds (CI)

JSON goes to --json, else $OUT/gpu_dali_<device>.json when $OUT is set (benchmarks/gpu_check.sh),
else benchmarks/results/gpu_dali_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from fastdeit.bench.loader_dali import format_table, run

HW_LOADS = (0.0, 0.65, 0.9, 1.0)  # DALI's default 0.65, and the H100/H200 hardware decoder's range


def default_json(device: str) -> Path:
    root = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path("benchmarks/results")
    return root / f"gpu_dali_{device}.json"


def region_probe(data: str | None) -> dict:
    """Region decode of the file's first JPEGs (or generated photo crops) tried in a child process;
    the choice DaliLoader then makes on this GPU (probed once per process, reused by the loaders)."""
    import tempfile

    import torch

    from fastdeit.data.beton import BetonReader
    from fastdeit.data.dali_pipeline import DaliSettings, choose_region_decode

    with tempfile.TemporaryDirectory() as tmp:
        if data is None:
            from fastdeit.bench.e2e import sample_beton

            data = str(sample_beton(Path(tmp) / "probe.beton", 16, 512, unique=16))
        with BetonReader(data) as reader:
            region, note = choose_region_decode(DaliSettings("mixed", 2), torch.cuda.current_device(), reader)
    print(note or "DALI region decode probe: ok (decoding only the plan's crops)", flush=True)
    return {"region_decode": region, "note": note}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a few small batches: checks the script runs")
    ap.add_argument("--data", help="an existing .beton instead of the generated 512/256 files")
    ap.add_argument("--max-res", type=int, nargs="+", default=[512, 256])
    ap.add_argument("--hw-load", type=float, nargs="+", default=list(HW_LOADS))
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads per loader (default: all cores)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.tiny:
        args.images, args.batch, args.img_size, args.rounds = 64, 32, 64, 1
        args.max_res, args.hw_load = [256], [0.0, 1.0]
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is visible here (DALI's mixed decode needs one; "
                             "--device cpu runs the CPU twin)")
    path = args.json or default_json(args.device)
    path.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["benchmarks/gpu_dali.py"] + (sys.argv[1:] if argv is None else argv))
    result: dict = {}
    probe = region_probe(args.data) if args.device == "cuda" else None
    # one file at a time, the JSON rewritten after each: a run cut short by `timeout` keeps
    # what it measured
    for max_res in [None] if args.data else args.max_res:
        part = run(
            args.data, device=args.device, max_res=[max_res], hw_decoder_load=args.hw_load,
            images=args.images, unique_images=min(512, args.images), batch=args.batch,
            img_size=args.img_size, threads=args.threads, rounds=args.rounds,
        )
        rows = result.get("rows", []) + part["rows"]
        result = {**part, "rows": rows, "command": command}
        if probe is not None:
            result["region_decode_probe"] = probe
        path.write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
