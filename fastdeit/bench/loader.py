"""CPU loader throughput: fastdeit's CpuLoader vs the real FFCV Loader vs the torchvision/timm
reference DataLoader, on the same images, side by side in one run.

Task: RandomResizedCrop 224 (scale 0.08-1, ratio 3/4-4/3, bicubic) + horizontal flip to uint8
batches, from a `.beton` (fastdeit, FFCV) or the same pixels as an ImageFolder of JPEGs
(reference). The reference is also timed with deit's whole CPU recipe (timm create_transform:
RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25, normalise), the CPU cost fastdeit moves to
the device. Images are crops of real photographs at ImageNet's typical 500x375, stored with the
longest side <= --max-res.

    python benchmarks/bench_loader.py [--data FILE.beton]   (or: python -m fastdeit.bench.loader) [--images 512] [--max-res 256 512]
        [--rounds 3] [--workers 1 2] [--json benchmarks/results/loader_cpu.json]

Numbers are the median images/s of --rounds whole epochs per loader, the loaders and thread counts
interleaved round by round (a shared machine's load then hits all alike; the worst round compares
round k with round k), after one warm-up epoch each
(numba compilation, worker start-up, page cache). Every timed epoch starts from an empty
pipeline: fastdeit's producer would otherwise decode the next epoch's first batches during the
other loaders' rounds, outside any clock (FFCV's and the DataLoader's epochs start empty too).

Beside the thread scaling and the main-thread contention it prints the machine's own ceiling for
them, timed in the same rounds (fastdeit.bench.machine_ceiling; --no-ceiling skips it): the
loader's per-batch work in 1 and 2 separate processes, which share no GIL. On a VM whose vCPU slows
while the other one is busy, 2 processes do not reach 2x either, and a busy main thread slows beside
a process that shares nothing with it; "over ceiling" is the loader's figure over the machine's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fastdeit.bench import loader_contention
from fastdeit.bench.machine import describe_machine
from fastdeit.bench.machine_ceiling import DecodeProcesses
from fastdeit.data.beton import BetonReader, BetonWriter
from fastdeit.data.cpu_decoder import REGION_DECODE_AVAILABLE
from fastdeit.data.loader import CpuLoader
from fastdeit.data.plan import PlanConfig
from fastdeit.data.sample_images import photo_crops
from fastdeit.figures import pyplot, save_figure

BATCH = 64


def make_data(root: Path, n: int, max_res: int) -> tuple[Path, Path]:
    """A .beton and an ImageFolder holding the same stored pixels (JPEG q90)."""
    from PIL import Image

    beton = root / f"bench_{max_res}.beton"
    folder = root / f"folder_{max_res}"
    photos = photo_crops(n, (500, 375), seed=0)
    with BetonWriter(beton, "jpg", max_resolution=max_res, jpeg_quality=90) as w:
        for k, img in enumerate(photos):
            w.add(img, k % 10)
    r = BetonReader(beton)
    for i in range(len(r)):
        d = folder / f"c{int(r.labels[i]):02d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(r.decode(i)).save(d / f"{i:05d}.jpg", quality=90)
    return beton, folder


class Epochs:
    """A loader's epochs, with the worker processes whose CPU time counts (DataLoader)."""

    def __init__(self, make_iter, loader=None, decode_threads=None, start_empty=None) -> None:
        self.make_iter = make_iter
        self.loader = loader
        self.decode_threads = decode_threads  # fastdeit: its decode threads' native ids
        # fastdeit: drops the batches its producer decoded ahead (during the other loaders' rounds),
        # so that every timed epoch starts from an empty pipeline, as FFCV's and the DataLoader's do
        self.start_empty = start_empty or (lambda: None)

    def worker_pids(self) -> list[int]:
        it = getattr(self.loader, "_iterator", None)  # persistent DataLoader workers
        return [w.pid for w in getattr(it, "_workers", [])]

    def close(self) -> None:
        """Stop the loader's threads and workers now, not in garbage collection at interpreter exit
        (where threads still running compiled code print 'Exception ignored ...' tracebacks)."""
        close = getattr(self.loader, "close", None)
        if callable(close):
            close()
        self.loader = None
        self.make_iter = None


def _children_cpu(pids: list[int]) -> float:
    try:
        import psutil
    except ImportError:
        return float("nan")
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            return float("nan")
    return total


def epoch_rate(epochs: Epochs) -> tuple[float, float, float]:
    """(images/s, CPU ms per image, images/s net of CPU waits) of one whole epoch.

    CPU time is this process's (all threads: fastdeit's decode threads, FFCV's workers) plus the
    DataLoader worker processes' (needs psutil): the cost per image, which a busy shared machine
    distorts far less than the wall-clock rate. The net rate (fastdeit only, else nan) takes the
    decode threads' mean wait for a CPU (schedstat run delay) off the wall clock: the rate with a
    core per thread, which a shared machine (other users, autogroup scheduling) does not give.
    """
    done = 0
    epochs.start_empty()
    pids = epochs.worker_pids()
    tids = epochs.decode_threads() if epochs.decode_threads else []
    d0 = loader_contention.run_delay(tids)
    c0, k0, t0 = time.process_time(), _children_cpu(pids), time.perf_counter()
    for batch in epochs.make_iter():
        done += len(batch[0]) if isinstance(batch, (list, tuple)) else len(batch.images)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0 + (_children_cpu(pids) - k0)
    wait = (loader_contention.run_delay(tids) - d0) / len(tids) if tids else float("nan")
    return done / wall, cpu / done * 1e3, done / (wall - wait)


def plan_config() -> PlanConfig:
    """The benchmark's plans: batches of BATCH 224 px views, no repeated augmentation."""
    return PlanConfig(img_size=224, global_batch=BATCH, mix_group=64, repeated_aug=1, epoch_multiple=1)


def fastdeit_epochs(beton: Path, threads: int, region_decode: bool = True):
    reader = BetonReader(beton)
    loader = CpuLoader(reader, plan_config(), seed=0, threads=threads, prefetch=2, region_decode=region_decode)
    pool = loader.decoder._pool  # its threads start with the first batch
    return Epochs(lambda: iter(loader), loader, decode_threads=lambda: [t.native_id for t in pool._threads],
                  start_empty=loader.stop_prefetching)


def thread_scaling(rows: list[dict], ceilings: dict | None = None) -> list[dict]:
    """fastdeit's img/s at each thread count over its img/s at 1 thread, per max_res (wall clock,
    and net of the decode threads' waits for a CPU); with `ceilings` ({max_res: [{processes: img/s}
    per round]}, machine_ceiling), the machine's own w-over-1 beside it, w processes for w threads."""
    mine = [r for r in rows if r["loader"].startswith("fastdeit CpuLoader (") and r["img_per_s"]]
    out = []
    for max_res in dict.fromkeys(r["max_res"] for r in mine):
        by = {r["workers"]: r for r in mine if r["max_res"] == max_res}
        for w, r in sorted(by.items()):
            if w != 1 and 1 in by:
                one = by[1]
                net = r.get("img_per_s_net_of_cpu_wait"), one.get("img_per_s_net_of_cpu_wait")
                out.append({"max_res": max_res, "threads": w,
                            "img_per_s_over_1_thread": round(r["img_per_s"] / one["img_per_s"], 2),
                            "img_per_s_over_1_thread_worst_round": worst_round(r, one, "rounds_img_per_s"),
                            "img_per_s_over_1_thread_net_of_cpu_wait":
                                round(net[0] / net[1], 2) if net[0] and net[1] else None})
            rounds = [(d[1], d[w]) for d in (ceilings or {}).get(max_res) or [] if 1 in d and w in d]
            if w != 1 and 1 in by and rounds:
                ceiling = [b / a for a, b in rounds]
                mine_rounds = [x / y for x, y in zip(r["rounds_img_per_s"], one["rounds_img_per_s"])]
                out[-1].update({
                    "machine_ceiling_over_1_process": round(float(np.median(ceiling)), 2),
                    "machine_ceiling_worst_round": round(min(ceiling), 2),
                    "ceiling_rounds": [[round(a, 1), round(b, 1)] for a, b in rounds],
                    "img_per_s_over_1_thread_over_ceiling":
                        round(float(np.median([m / c for m, c in zip(mine_rounds, ceiling)])), 2),
                })
    return out


def ffcv_epochs(beton: Path, workers: int):
    try:
        from ffcv.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
        from ffcv.loader import Loader, OrderOption
        from ffcv.transforms import RandomHorizontalFlip, ToTensor
    except ImportError:
        return None
    loader = Loader(
        str(beton),
        batch_size=BATCH,
        num_workers=workers,
        order=OrderOption.RANDOM,
        drop_last=True,
        os_cache=True,
        pipelines={
            "image": [RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip(), ToTensor()],
            "label": [IntDecoder(), ToTensor()],
        },
    )
    return Epochs(lambda: iter(loader), loader)


def reference_epochs(folder: Path, workers: int, full_recipe: bool):
    from torchvision import datasets, transforms

    if full_recipe:
        from fastdeit.config.schema import AugmentConfig, DataConfig
        from fastdeit.data.reference import build_train_transform

        # deit datasets.build_transform (timm create_transform), Pillow-13 posterize fixed
        tf = build_train_transform(DataConfig(img_size=224), AugmentConfig())
    else:
        tf = transforms.Compose([
            transforms.RandomResizedCrop(224, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.RandomHorizontalFlip(),
            transforms.PILToTensor(),
        ])
    ds = datasets.ImageFolder(str(folder), transform=tf)
    dl = torch.utils.data.DataLoader(
        ds, batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True,
        persistent_workers=True,
    )
    return Epochs(lambda: iter(dl), dl)


def worst_round(mine: dict, other: dict, key: str) -> float | None:
    """The lowest ratio of round k to round k (the rounds ran interleaved, so round k of each ran
    under the same load); None where either has no rounds."""
    a, b = mine.get(key) or [], other.get(key) or []
    pairs = [x / y for x, y in zip(a, b) if x and y]
    return round(min(pairs), 2) if pairs else None


def ratios(rows: list[dict]) -> list[dict]:
    """fastdeit over each peer per (max_res, workers): img/s ratio and CPU-cost-per-image ratio."""
    out = []
    peers = {"ffcv": "FFCV Loader", "reference_rrc_flip": "reference DataLoader RRC+flip",
             "reference_full_recipe": "reference DataLoader deit full CPU recipe"}
    for key in sorted({(r["max_res"], r["workers"]) for r in rows}, key=str):
        by = {r["loader"].split(" (")[0]: r for r in rows if (r["max_res"], r["workers"]) == key}
        mine = by.get("fastdeit CpuLoader", {})
        entry = {"max_res": key[0], "workers": key[1]}
        for short, peer in peers.items():
            other = by.get(peer, {})
            a, b = mine.get("img_per_s"), other.get("img_per_s")
            entry[f"rate_vs_{short}"] = round(a / b, 2) if a and b else None
            entry[f"rate_vs_{short}_worst_round"] = worst_round(mine, other, "rounds_img_per_s")
            a, b = mine.get("cpu_ms_per_img"), other.get("cpu_ms_per_img")
            entry[f"cpu_cost_{short}_over_fastdeit"] = round(b / a, 2) if a and b else None
        out.append(entry)
    return out


def plot(result: dict, path: Path) -> None:
    """Grouped bars of img/s per loader, one group per (max_res, workers)."""
    plt = pyplot()

    rows = [r for r in result["rows"] if r["img_per_s"] is not None]
    groups = sorted({(r["max_res"], r["workers"]) for r in rows}, key=str)
    names = list(dict.fromkeys(r["loader"] for r in rows))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        vals = [next((r["img_per_s"] for r in rows if r["loader"] == name and (r["max_res"], r["workers"]) == g), 0)
                for g in groups]
        ax.bar([i + k * width for i in range(len(groups))], vals, width, label=name)
    ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(groups))])
    ax.set_xticklabels([f"max side {g[0]}\n{g[1]} worker(s)" for g in groups])
    ax.set_ylabel("images / s")
    ax.set_title(f"CPU loader, {result['task']} ({result['machine']['cores']} cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def set_loaders(beton: Path, folder: Path | None, workers: list[int], mine: str,
                args: argparse.Namespace) -> dict[tuple[str, int], Epochs | None]:
    """Every (loader, thread or worker count) timed on one data set; None where not installed."""
    loaders: dict[tuple[str, int], Epochs | None] = {}
    for w in workers:
        loaders[(mine, w)] = fastdeit_epochs(beton, w)
        if args.decode_ab and REGION_DECODE_AVAILABLE:
            loaders[("fastdeit CpuLoader full decode (threads)", w)] = fastdeit_epochs(beton, w, False)
        loaders[("FFCV Loader (workers)", w)] = ffcv_epochs(beton, w)
        if folder is not None and not args.no_reference:
            loaders[("reference DataLoader RRC+flip (workers)", w)] = reference_epochs(folder, w, False)
            loaders[("reference DataLoader deit full CPU recipe (workers)", w)] = reference_epochs(folder, w, True)
    return loaders


def time_rounds(loaders: dict[tuple[str, int], Epochs | None], rounds: int,
                ceiling: DecodeProcesses | None = None, images: int = 0, counts: tuple[int, ...] = (1, 2),
                ) -> tuple[dict[tuple[str, int], list[tuple[float, float, float]]], list[dict[int, float]]]:
    """`rounds` epochs of each loader after one warm-up epoch each (numba compilation, worker
    start, page cache), interleaved across loaders and thread counts alike: a shared machine's
    swings then hit the peers, and the 1- and 2-thread runs a scaling ratio compares, alike.

    With `ceiling`, each round also times `images` images in each of `counts` decode processes
    (the machine's scaling ceiling, machine_ceiling); returned as [{processes: img/s}] per round.
    """
    rates = {key: [] for key, epochs in loaders.items() if epochs is not None}
    for key in rates:
        epoch_rate(loaders[key])
    ceiling_rounds = []
    for _ in range(rounds):
        for key in rates:
            rates[key].append(epoch_rate(loaders[key]))
        if ceiling is not None:
            ceiling_rounds.append({k: ceiling.rate(images, k) for k in counts})
    return rates, ceiling_rounds


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="an existing .beton (skips generating; no reference rows)")
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--max-res", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3, help="timed epochs per loader (median)")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--decode-ab", action="store_true",
                    help="also time fastdeit decoding whole JPEGs (simplejpeg), beside region decoding")
    ap.add_argument("--contention-rounds", type=int, default=None,
                    help="rounds of the contention figures (default: --rounds); each round is a few seconds, "
                         "and a shared machine's single-thread speed swings by a third from one second to the next")
    ap.add_argument("--no-contention", action="store_true",
                    help="skip the main-thread contention figures (fastdeit, 1 decode thread)")
    ap.add_argument("--no-ceiling", action="store_true",
                    help="skip the machine's ceiling: the loader's per-batch work in as many separate "
                         "processes (no GIL), timed in the same rounds, beside the scaling and contention "
                         "figures (fastdeit.bench.machine_ceiling)")
    ap.add_argument("--json", default="benchmarks/results/loader_cpu.json")
    ap.add_argument("--note", default="", help="free text stored with the results (e.g. machine load)")
    args = ap.parse_args(argv)
    cpus = os.cpu_count() or 1
    if any(w < 1 or w > cpus for w in args.workers):
        # FFCV's Loader (numba's set_num_threads) refuses more workers than CPUs
        ap.error(f"--workers {' '.join(map(str, args.workers))}: each must be between 1 and this machine's {cpus} CPUs")
    torch.set_num_threads(1)

    cmd = " ".join(["python", "benchmarks/bench_loader.py"] + (sys.argv[1:] if argv is None else argv))
    result = {"machine": describe_machine(), "command": cmd,
              "task": f"RandomResizedCrop 224 bicubic + flip -> uint8 batches of {BATCH}",
              "region_decode": REGION_DECODE_AVAILABLE, "rows": [], "contention": []}
    mine = "fastdeit CpuLoader (threads, " + ("region decode)" if REGION_DECODE_AVAILABLE else "full decode)")
    with tempfile.TemporaryDirectory() as tmp:
        sets = [(Path(args.data), None, "given")] if args.data else [
            (*make_data(Path(tmp), args.images, m), m) for m in args.max_res
        ]
        ceilings = {}
        for beton, folder, max_res in sets:
            loaders = set_loaders(beton, folder, args.workers, mine, args)  # a bad file is named here
            ceiling = None
            # processes for the scaling (as many as the largest thread count) or the contention (1)
            counts = tuple(sorted(set(args.workers) | {1})) if 1 in args.workers and len(args.workers) > 1 else ()
            if not args.no_ceiling and (counts or not args.no_contention):
                try:
                    ceiling = DecodeProcesses(beton, plan_config(), max(counts or (1,)))
                except BaseException:
                    for epochs in loaders.values():
                        if epochs is not None:
                            epochs.close()
                    raise
            images = len(loaders[(mine, args.workers[0])].loader) * BATCH  # one epoch, as a loader's round
            rates, ceilings[max_res] = time_rounds(loaders, args.rounds, ceiling if counts else None, images,
                                                   counts)
            for (name, w), epochs in loaders.items():
                r = rates.get((name, w))
                ips = None if r is None else float(np.median([x[0] for x in r]))
                cpu = None if r is None else float(np.median([x[1] for x in r]))
                net = None if r is None else float(np.median([x[2] for x in r]))
                row = {"loader": name, "max_res": max_res, "workers": w,
                       "img_per_s": None if ips is None else round(ips, 1),
                       "img_per_s_net_of_cpu_wait": None if net is None or net != net else round(net, 1),
                       "cpu_ms_per_img": None if cpu is None or cpu != cpu else round(cpu, 3),
                       "rounds_img_per_s": None if r is None else [round(x[0], 1) for x in r],
                       "rounds_cpu_ms_per_img": None if r is None else [round(x[1], 3) for x in r]}
                result["rows"].append(row)
                shown = "n/a (not installed)" if ips is None else f"{ips:8.1f} img/s  {cpu:6.3f} CPU ms/img"
                print(f"max_res {max_res!s:>5}  {w} worker(s)  {name:<52} {shown}", flush=True)
            for epochs in loaders.values():
                if epochs is not None:
                    epochs.close()
            del loaders
            gc.collect()  # the loaders' threads and mappings go now, while the interpreter is whole
            if not args.no_contention:
                contended = fastdeit_epochs(beton, 1)
                c = {"max_res": max_res, "threads": 1,
                     **loader_contention.measure(contended, BATCH, args.contention_rounds or args.rounds, ceiling)}
                contended.close()
                result["contention"].append(c)
                print(f"max_res {max_res!s:>5}  1 thread   main-thread contention: loader img/s busy/idle main "
                      f"{c['loader_rate_ratio']} (worst {c['loader_rate_ratio_worst']}), main-thread Python "
                      f"speed with/without loader {c['main_speed_ratio']} (worst {c['main_speed_ratio_worst']}); "
                      f"net of CPU waits: {c['loader_rate_ratio_net_of_cpu_wait']} (worst "
                      f"{c['loader_rate_ratio_worst_net_of_cpu_wait']}), {c['main_speed_ratio_net_of_cpu_wait']} "
                      f"(worst {c['main_speed_ratio_worst_net_of_cpu_wait']})", flush=True)
                if ceiling is not None:
                    print(f"max_res {max_res!s:>5}  machine ceiling (a decode process instead of the thread): "
                          f"its img/s busy/idle main {c['ceiling_process_rate_ratio']} (worst "
                          f"{c['ceiling_process_rate_ratio_worst']}), main-thread speed beside it "
                          f"{c['ceiling_main_speed_ratio']} (worst {c['ceiling_main_speed_ratio_worst']}); "
                          f"loader over ceiling {c['loader_rate_ratio_over_ceiling']}, main thread over ceiling "
                          f"{c['main_speed_ratio_over_ceiling']}", flush=True)
            if ceiling is not None:
                ceiling.close()
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    if args.note:
        result["note"] = args.note
    result["ratios"] = ratios(result["rows"])
    result["thread_scaling"] = thread_scaling(result["rows"], ceilings)
    for r in result["thread_scaling"]:
        ceiling = (f"; machine ceiling, {r['threads']} decode processes over 1: {r['machine_ceiling_over_1_process']}x "
                   f"(worst round {r['machine_ceiling_worst_round']}x), fastdeit over ceiling "
                   f"{r['img_per_s_over_1_thread_over_ceiling']}" if "machine_ceiling_over_1_process" in r else "")
        print(f"max_res {r['max_res']!s:>5}  fastdeit {r['threads']} threads over 1: {r['img_per_s_over_1_thread']}x "
              f"(worst round {r['img_per_s_over_1_thread_worst_round']}x) "
              f"(net of CPU waits {r['img_per_s_over_1_thread_net_of_cpu_wait']}x){ceiling}")
    for r in result["ratios"]:
        print(f"max_res {r['max_res']!s:>5}  {r['workers']} worker(s)  img/s vs FFCV {r['rate_vs_ffcv']}x "
              f"(worst round {r['rate_vs_ffcv_worst_round']}x), "
              f"vs reference full recipe {r['rate_vs_reference_full_recipe']}x;  CPU cost per image: "
              f"FFCV {r['cpu_cost_ffcv_over_fastdeit']}x, reference full recipe "
              f"{r['cpu_cost_reference_full_recipe_over_fastdeit']}x fastdeit's")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        plot(result, Path(args.json).with_suffix(".png"))
        print(f"wrote {args.json} and {Path(args.json).with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
