"""`fastdeit bench prepare|loader|model|e2e|distill|augment|fidelity`: figures side by side with the peers, in one run.

`--tiny` shrinks every benchmark to CPU-sized settings (what CI runs); without it the settings
are the real ones (ImageNet-sized images, DeiT at 224), meant for a GPU node.

`loader` prints, beside FFCV's and the reference's rates, the CPU loader's thread scaling and
main-thread contention with the machine's own ceiling for them (the same work in separate
processes, fastdeit.bench.machine_ceiling); `python -m fastdeit.bench.loader --help` has the
finer settings (rounds, contention rounds, --no-ceiling).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

TINY_ARCH = {"patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2}
TINY_MODEL_SET = [f"model.{k}={v}" for k, v in TINY_ARCH.items()] + [
    "data.img_size=64", "data.global_batch=32", "augment.mix_group=16", "data.workers=2"]


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks against the peers (FFCV, timm/torchvision, online teacher)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("prepare", "loader", "model", "e2e", "distill", "augment", "fidelity"))
    p.add_argument("--tiny", action="store_true", help="CPU-sized settings (seconds, for CI)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--loader", default="cpu",
                   help="`loader`: cpu or dali; `e2e`: one or more of cpu, dali, reference, comma-separated "
                        "(reference = deit's pipeline, with deit's step (a) and fastdeit's step (b))")
    p.add_argument("--batch", default=None,
                   help="`e2e`: per-GPU batches, comma-separated (default 128,256; deit: 1,024 over 8 GPUs = 128)")
    p.add_argument("--steps", type=int, default=None, help="`e2e`: timed steps per row (default 50)")
    p.add_argument("--reference-step", default="deit,fastdeit",
                   help="`e2e --loader reference`: deit (a: fp16 AMP eager), fastdeit (b: compiled bf16), or both")
    p.add_argument("--preset", default="deit_s_300ep", help="recipe for `e2e`")
    p.add_argument("--data", help="an existing .beton for `loader` and `e2e` (default: generated photo crops)")
    p.add_argument("--decode-ab", action="store_true",
                   help="`loader`: also time fastdeit decoding whole JPEGs, beside region decoding")
    p.add_argument("--max-autotune", action="store_true",
                   help="`model`: only DeiT-B compiled with mode max-autotune at batch 128 (compiles for minutes)")
    p.add_argument("--plot", metavar="PNG", help="for `e2e`: write the figure (time split, projected hours) here")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override one recipe key for `e2e` (e.g. model.compile=off); repeatable")
    add_fidelity_arguments(p)
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="write results as JSON to FILE, or alone to stdout without FILE (tables then go to stderr)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.plot and args.kind != "e2e":
        raise ValueError("--plot is for `fastdeit bench e2e`")
    # with JSON on stdout, everything the benchmark prints (tables, notes) goes to stderr
    to_stderr = contextlib.redirect_stdout(sys.stderr) if args.json == "-" else contextlib.nullcontext()
    with to_stderr:
        result = BENCHES[args.kind](args)
        if args.plot:
            from fastdeit.bench.e2e_plot import plot_e2e

            print(f"wrote {plot_e2e([result], Path(args.plot))}")
    if args.json == "-":
        print(json.dumps(result, indent=2, default=str))
    elif args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
        tmp.replace(path)
    return 0


def bench_prepare(args) -> dict:
    from fastdeit.bench.prepare import run as prepare_run

    return prepare_run(n_images=40 if args.tiny else 1000, workers=(1,) if args.tiny else (1, 2))


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def bench_loader(args) -> dict:
    if args.loader not in ("cpu", "dali"):
        raise ValueError(f"--loader {args.loader!r}: `bench loader` times one of cpu, dali")
    if args.loader == "dali":
        from fastdeit.bench.loader_dali import run as dali_run

        device = "cpu" if args.tiny else ("cuda" if args.device == "auto" else args.device)
        if device == "cuda" and not gpu_available():
            print("note: no CUDA GPU here, so this times DALI's CPU twin (device_id=None), a CI check "
                  "rather than DALI's speed (GPU decode needs a GPU)", file=sys.stderr)
            return dali_run(args.data, device="cpu", max_res=(256,), hw_decoder_load=(0.0,), images=128,
                            unique_images=64, batch=64, img_size=224, rounds=1)
        if args.tiny:
            return dali_run(args.data, device=device, max_res=(128,), hw_decoder_load=(0.0,), images=64,
                            unique_images=32, batch=32, img_size=64, rounds=1)
        return dali_run(args.data, device=device)  # with the CPU loader's rows beside DALI's
    from fastdeit.bench.loader import main as loader_main

    argv = ["--json", ""] + (["--data", args.data] if args.data else []) + (["--decode-ab"] if args.decode_ab else [])
    if args.tiny:
        argv += ["--images", "64", "--max-res", "128", "--workers", "1", "--rounds", "1"]
    return loader_main(argv)


def bench_model(args) -> dict:
    from fastdeit.bench.model import run as model_run

    if args.tiny:
        return model_run(("deit_tiny_patch16_224",), batch=8, img_size=64, device=args.device,
                         modes=("eager",), attentions=("default", "math"), steps=2, warmup=1, arch=TINY_ARCH)
    # deit's per-GPU batch (1,024 over 8 GPUs) first, then 256; compiled is what training runs on CUDA
    base = ("deit_base_patch16_224",)
    if args.max_autotune:  # its own call: inductor's autotuning compiles for minutes
        return model_run(base, device=args.device, modes=("compiled-max-autotune",), batch=128, steps=10, warmup=3)
    result = model_run(device=args.device, modes=("compiled", "eager"), batch=128, steps=10, warmup=3)
    result["rows"] += model_run(device=args.device, modes=("compiled",), batch=256, steps=10, warmup=3)["rows"]
    # DeiT-B: attention backends (eager) and CUDA graphs beside plain compiled
    result["rows"] += model_run(base, device=args.device, modes=("eager",), batch=128,
                                attentions=("flash", "efficient", "cudnn", "math"), steps=5, warmup=2)["rows"]
    result["rows"] += model_run(base, device=args.device, modes=("compiled-cudagraphs",), batch=128, steps=10,
                                warmup=3)["rows"]
    return result


def comma_list(text: str, what: str, kind=str) -> tuple:
    try:
        items = tuple(kind(x.strip()) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected a comma-separated list") from None
    if not items:
        raise ValueError(f"{what}: empty")
    return items


def bench_e2e(args) -> dict:
    from fastdeit.bench.e2e import run as e2e_run

    loaders = comma_list(args.loader, "--loader")
    ref_steps = comma_list(args.reference_step, "--reference-step")
    if args.tiny:
        batches = comma_list(args.batch, "--batch", int) if args.batch else (32,)
        return e2e_run(args.preset, data=args.data, overrides=TINY_MODEL_SET + args.overrides, loaders=loaders,
                       batches=batches, reference_steps=ref_steps, steps=args.steps or 3, warmup=1, max_res=96,
                       device=args.device)
    batches = comma_list(args.batch, "--batch", int) if args.batch else (128, 256)
    return e2e_run(args.preset, data=args.data, device=args.device, loaders=loaders, batches=batches,
                   reference_steps=ref_steps, steps=args.steps or 50, warmup=10, max_res=512,
                   overrides=["data.workers=16", *args.overrides])


def bench_distill(args) -> dict:
    from fastdeit.bench.distill import run as distill_run

    if args.tiny:
        return distill_run(steps=2, warmup=1, rounds=1, batch=16, device=args.device)
    # the paper's three students with its RegNetY-16GF teacher; DeiT-B first (the 300-epoch flagship)
    students = ("deit_base_distilled_patch16_224", "deit_small_distilled_patch16_224",
                "deit_tiny_distilled_patch16_224")
    return {"benchmark": "distill", "students": {
        name: distill_run(student=name, student_arch={}, teacher="regnety_160", img_size=224, batch=128,
                          num_classes=1000, k=1, device=args.device) for name in students}}


def bench_augment(args) -> dict:
    from fastdeit.bench.augment import run as augment_run

    if args.tiny:  # on the CPU the fused path runs in Triton's interpreter: one small batch
        return augment_run(batches=(64,), side=24, steps=1, seconds=0.5, device=args.device, timm_images=64)
    if args.device == "cpu" or (args.device == "auto" and not __import__("torch").cuda.is_available()):
        raise ValueError("fastdeit bench augment without a GPU: add --tiny (the fused kernels run in Triton's "
                         "interpreter on the CPU, far too slow for 224 px batches of 256)")
    return augment_run(batches=(128, 256), device=args.device)


def add_fidelity_arguments(p) -> None:
    g = p.add_argument_group("fidelity", "`fastdeit bench fidelity`: reference vs view-plan loaders (issue 17)")
    g.add_argument("--dataset", default="digits", choices=("digits", "demo"), help="data set for `fidelity`")
    g.add_argument("--seeds", default="5", metavar="K|A,B,..",
                   help="`fidelity`: K (seeds 0..K-1) or a comma-separated list of seeds, per loader")
    g.add_argument("--epochs", type=int, default=0, help="`fidelity`: epochs per run (0 = the preset's)")
    g.add_argument("--loaders", default="reference,cpu,dali", help="`fidelity`: comma-separated loaders")
    g.add_argument("--stats-steps", type=int, default=20, help="`fidelity`: steps measured stage by stage")
    g.add_argument("--out", help="`fidelity`: keep the run directories and runs.jsonl here; the same command "
                   "run again reuses the finished runs and resumes a stopped one")
    g.add_argument("--no-train", action="store_true", help="`fidelity`: stage statistics and replay only")


def parse_seeds(text: str) -> tuple[int, ...]:
    """--seeds K (seeds 0..K-1) or A,B,... (those seeds)."""
    try:
        if "," in text:
            return tuple(int(x) for x in text.split(",") if x.strip())
        return tuple(range(int(text)))
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected a count K or a list of seeds like 0,2") from None


def bench_fidelity(args) -> dict:
    from fastdeit.bench.fidelity import FidelitySettings, report, run as fidelity_run

    loaders = tuple(x.strip() for x in args.loaders.split(",") if x.strip())
    if args.tiny:
        settings = FidelitySettings.tiny(args.dataset, loaders)
        settings.overrides += args.overrides
    else:
        settings = FidelitySettings(dataset=args.dataset, loaders=loaders, seeds=parse_seeds(args.seeds),
                                    epochs=args.epochs, stats_steps=args.stats_steps, overrides=args.overrides,
                                    out=args.out or "", train=not args.no_train)
    if args.preset != "deit_s_300ep":  # --preset's default is e2e's; fidelity's is the demo recipe
        settings.preset = args.preset
    result = fidelity_run(settings)
    if args.json != "-":
        print(report(result))
    return result


BENCHES = {"prepare": bench_prepare, "loader": bench_loader, "model": bench_model, "e2e": bench_e2e,
           "distill": bench_distill, "augment": bench_augment, "fidelity": bench_fidelity}
