"""The DALI decode stage: planned crops of `.beton` samples, decoded, resized and flipped by DALI.

Why DALI: on a GPU node the CPU cannot decode fast enough for DeiT-S/Ti; DALI decodes JPEGs
with nvJPEG and the GPU's hardware JPEG decoder (``device="mixed"``, share set by
``hw_decoder_load``). The same graph built with ``device="cpu"`` and ``device_id=None`` is the
CPU twin that runs in CI.

What goes in, per batch (all from the view plan; DALI shuffles and shards nothing):

* ``data``: each sample's stored bytes as a read-only numpy *view* into the memory-mapped
  `.beton` (``no_copy=True``: DALI reads the page cache directly; no bytes go through Python).
  A parallel external source is not used on purpose: its workers would copy every sample into
  shared memory, while here the source costs nothing and the decode already runs on DALI's
  threads.
* ``anchor``/``shape``: the plan's crop box (top, left) and (height, width) in stored pixels,
  as int32 (absolute coordinates), so the JPEG is decoded only inside the box (ROI decode).
* ``flip``: the plan's horizontal flip.
* raw-mode samples: ``dims`` (h, w, 3) to view their bytes as an image, cropped by ``fn.slice``
  without decoding; a file holding both kinds (FFCV's smart/proportion modes) routes each
  sample with a DALI conditional on ``is_jpeg``.

The crop is resized to img_size x img_size with a bicubic filter (Catmull-Rom, a = -0.5, as
Pillow's) that widens when downscaling (antialias), the CPU loader's and the reference
pipeline's interpolation. Output: uint8 NHWC, the layout of `fastdeit.data.loader.Batch`.
"""

from __future__ import annotations

import collections
import importlib
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from fastdeit.data.cpu_decoder import SampleSource
from fastdeit.data.plan import Plan

DECODE_DEVICES = ("mixed", "cpu")
REGION_DECODE_MODES = ("auto", "on", "off")
INSTALL_HINT = "pip install 'fastdeit[dali]' (or: pip install nvidia-dali-cuda130)"


def require_dali() -> ModuleType:
    """Import nvidia.dali, or say how to install it (ValueError) before any work starts."""
    try:
        return importlib.import_module("nvidia.dali")
    except ImportError as err:
        raise ValueError(
            f"data.loader=dali needs NVIDIA DALI, which is not installed ({err}): {INSTALL_HINT}; "
            "or use data.loader=cpu"
        ) from None


def check_decode_device(device: str) -> None:
    """Refuse an unknown decode device, or "mixed" (GPU decode) on a machine without a GPU."""
    if device not in DECODE_DEVICES:
        raise ValueError(f"DALI decode device {device!r}: expected one of {', '.join(DECODE_DEVICES)}")
    if device == "mixed" and not torch.cuda.is_available():
        raise ValueError(
            "DALI device='mixed' decodes JPEGs on the GPU, but no CUDA device is visible "
            "(torch.cuda.is_available() is False); use the DALI CPU twin (device='cpu', i.e. a "
            "DaliLoader on device='cpu') or the CPU loader (data.loader=cpu)"
        )


def storage_kind(is_jpeg: np.ndarray) -> str:
    """'jpeg', 'raw' or 'mixed': which branches the graph needs for this file."""
    is_jpeg = np.asarray(is_jpeg, dtype=bool)
    if is_jpeg.all():
        return "jpeg"
    if not is_jpeg.any():
        return "raw"
    return "mixed"


# The isolated region-decode test: a few of the file's own JPEGs, region-decoded by DALI "mixed" in
# a child process, so that a crash (nvImageCodec 0.9.0 is reported to SIGSEGV on region decode of
# ordinary ImageNet JPEGs on H100: NVIDIA/nvImageCodec issue 55) cannot take down the caller.
_PROBE_CODE = """
import sys
from pathlib import Path
import numpy as np
from nvidia.dali import fn, pipeline_def, types
device_id, load, folder = int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
jpegs = [np.fromfile(p, np.uint8) for p in sorted(folder.glob('*.jpg'))]
@pipeline_def(batch_size=len(jpegs), num_threads=2, device_id=device_id)
def probe():
    data = fn.external_source(source=[jpegs], cycle=True, dtype=types.UINT8, ndim=1)
    return fn.decoders.image_slice(data, [0.25, 0.25], [0.5, 0.5], device='mixed', hw_decoder_load=load)
pipe = probe()
pipe.build()
for _ in range(3):
    pipe.run()
"""
UPSTREAM_ISSUE = "NVIDIA/nvImageCodec issue 55"
PROBE_SAMPLES = 16


@dataclass(frozen=True)
class RegionProbe:
    ok: bool
    reason: str  # one line; empty when ok


def probe_region_decode(device_id: int, jpegs: list[bytes], hw_decoder_load: float = 0.65, *,
                        timeout: float = 120.0, command: list[str] | None = None) -> RegionProbe:
    """Region-decode `jpegs` with DALI "mixed" on `device_id` in a child process; did it work?

    `command` replaces the child's command line (tests use a child that dies by a real signal).
    """
    if not jpegs and command is None:
        return RegionProbe(True, "")  # nothing to region-decode
    with tempfile.TemporaryDirectory() as folder:
        for k, data in enumerate(jpegs):
            (Path(folder) / f"{k:03d}.jpg").write_bytes(bytes(data))
        argv = command or [sys.executable, "-c", _PROBE_CODE, str(int(device_id)), str(float(hw_decoder_load)),
                           folder]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return RegionProbe(False, f"DALI region decode did not finish within {timeout:.0f} s in a probe "
                                      f"on cuda:{device_id}")
    if done.returncode == 0:
        return RegionProbe(True, "")
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return RegionProbe(False, f"DALI region decode crashed ({name}) in a probe on cuda:{device_id}, "
                                  f"as reported for nvImageCodec 0.9.0 ({UPSTREAM_ISSUE})")
    last = (done.stderr.strip().splitlines() or ["no output"])[-1][:160]
    return RegionProbe(False, f"DALI region decode failed in a probe on cuda:{device_id} "
                              f"(exit {done.returncode}: {last})")


_PROBED: dict[tuple[int, float], RegionProbe] = {}  # one probe per device and load per process


def choose_region_decode(settings: DaliSettings, device_id: int | None, source: SampleSource | None = None,
                         probe=probe_region_decode) -> tuple[bool, str]:
    """(region decode or not, a one-line note when falling back). Only "auto" GPU decode probes,
    once per process and device, on the first few JPEGs of `source`."""
    if settings.region_decode != "auto":
        return settings.region_decode == "on", ""
    if settings.device != "mixed" or device_id is None:
        return True, ""
    key = (int(device_id), float(settings.hw_decoder_load))
    if key not in _PROBED:
        jpegs = [] if source is None else [
            source.image_bytes(int(i)) for i in np.flatnonzero(np.asarray(source.is_jpeg))[:PROBE_SAMPLES]]
        _PROBED[key] = probe(key[0], jpegs, key[1])
    result = _PROBED[key]
    if result.ok:
        return True, ""
    return False, f"{result.reason}: decoding whole images on the GPU and cropping there instead"


@dataclass(frozen=True)
class DaliSettings:
    """How the graph decodes; `hw_decoder_load` and `fancy_upsampling` matter for "mixed" only.

    hw_decoder_load: share of the JPEGs sent to the hardware decoder (A100/H100 class), the rest
      to nvJPEG's CUDA decoder; the best value depends on the GPU and the CPU threads (see
      benchmarks/gpu_dali.py).
    fancy_upsampling: interpolate chroma as libjpeg-turbo does (the CPU path's decoder), so the
      GPU output stays close to the CPU loader's.
    region_decode: "on" decodes only the plan's crop box (ROI decode); "off" decodes whole images
      and crops them after (same crops; the fallback where region decode crashes); "auto" is "on",
      except for GPU decode on a device where `probe_region_decode` saw it fail.
    """

    device: str = "cpu"
    threads: int = 2
    hw_decoder_load: float = 0.65  # DALI's default; tune with benchmarks/gpu_dali.py
    fancy_upsampling: bool = True
    region_decode: str = "auto"

    def __post_init__(self) -> None:
        if self.region_decode not in REGION_DECODE_MODES:
            raise ValueError(f"region_decode {self.region_decode!r}: expected one of {', '.join(REGION_DECODE_MODES)}")
        if self.device not in DECODE_DEVICES:
            raise ValueError(f"DALI decode device {self.device!r}: expected one of {', '.join(DECODE_DEVICES)}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if not 0.0 <= self.hw_decoder_load <= 1.0:
            raise ValueError(f"hw_decoder_load must be in [0, 1], got {self.hw_decoder_load}")


def _graph(kind: str, img_size: int, settings: DaliSettings, hints: tuple[int, int], region: bool = True):
    """The pipeline body (a function DALI traces). region=False: whole-image decode, then the crop."""
    from nvidia.dali import fn, types

    gpu = settings.device == "mixed"
    decode_args: dict[str, Any] = {"device": settings.device, "axis_names": "HW",
                                   "adjust_orientation": False}  # stored pixels, as the CPU path
    if gpu:
        # affine=False: DALI would pin each rank's decode threads to the same GPU-local cores,
        # piling the ranks of a node onto them
        decode_args.update(hw_decoder_load=settings.hw_decoder_load,
                           jpeg_fancy_upsampling=settings.fancy_upsampling, affine=False,
                           preallocate_width_hint=hints[0], preallocate_height_hint=hints[1])

    def decoded(data, anchor, shape):
        if region:
            return fn.decoders.image_slice(data, anchor, shape, **decode_args)
        # the fallback: decode the whole image (on the GPU for "mixed") and crop the box there
        whole = fn.decoders.image(data, **{k: v for k, v in decode_args.items() if k != "axis_names"})
        return fn.slice(whole, anchor, shape, axis_names="HW")

    def raw(data, anchor, shape, dims):
        img = fn.slice(fn.reshape(data, shape=dims, layout="HWC"), anchor, shape, axis_names="HW")
        return img.gpu() if gpu else img  # crop first: only the box crosses to the GPU

    def body():
        data = fn.external_source(name="data", no_copy=True, dtype=types.UINT8, ndim=1)
        anchor = fn.external_source(name="anchor", dtype=types.INT32, ndim=1)
        shape = fn.external_source(name="shape", dtype=types.INT32, ndim=1)
        flip = fn.external_source(name="flip", dtype=types.INT32, ndim=0)
        if kind == "jpeg":
            img = decoded(data, anchor, shape)
        else:
            dims = fn.external_source(name="dims", dtype=types.INT32, ndim=1)
            if kind == "raw":
                img = raw(data, anchor, shape, dims)
            else:
                is_jpeg = fn.external_source(name="is_jpeg", dtype=types.BOOL, ndim=0)
                if is_jpeg:
                    img = decoded(data, anchor, shape)
                else:
                    img = raw(data, anchor, shape, dims)
        img = fn.resize(img, size=[img_size, img_size], interp_type=types.INTERP_CUBIC, antialias=True)
        return fn.flip(img, horizontal=flip)

    return body


class DaliDecoder:
    """One DALI pipeline that turns plans into uint8 NHWC torch batches, several in flight.

    submit(plan) feeds a plan's samples and schedules the run (non-blocking); result() returns
    the oldest submitted batch as a torch tensor: CUDA for "mixed" (copied on the device on the
    current stream, no host round trip), CPU for the twin. Batches come back in submission order.
    """

    def __init__(
        self,
        source: SampleSource,
        img_size: int,
        max_batch: int,
        settings: DaliSettings = DaliSettings(),
        device_id: int | None = None,
    ) -> None:
        require_dali()
        check_decode_device(settings.device)
        if img_size <= 0 or max_batch <= 0:
            raise ValueError(f"img_size and max_batch must be positive, got {img_size}, {max_batch}")
        from nvidia.dali import pipeline_def

        self.source = source
        self.img_size = int(img_size)
        self.settings = settings
        self.gpu = settings.device == "mixed"
        if self.gpu:
            device_id = torch.cuda.current_device() if device_id is None else int(device_id)
            self.device = torch.device("cuda", device_id)
        else:
            device_id = None
            self.device = torch.device("cpu")
        is_jpeg = np.asarray(source.is_jpeg, dtype=bool)
        self.kind = storage_kind(is_jpeg)
        self._is_jpeg = is_jpeg
        self._widths = np.asarray(source.widths, dtype=np.int64)
        self._heights = np.asarray(source.heights, dtype=np.int64)
        hints = (int(self._widths.max(initial=0)), int(self._heights.max(initial=0)))
        self.region_decode, self.decode_note = choose_region_decode(settings, device_id, source)
        if self.decode_note:
            print(f"fastdeit: {self.decode_note}", file=sys.stderr, flush=True)
        # prefetch_queue_depth=1 with DALI's dynamic executor: runs scheduled ahead queue up in
        # order, so this class keeps its own number of batches in flight.
        self.pipe = pipeline_def(
            _graph(self.kind, self.img_size, settings, hints, self.region_decode),
            enable_conditionals=self.kind == "mixed",
        )(batch_size=int(max_batch), num_threads=settings.threads, device_id=device_id,
          prefetch_queue_depth=1, exec_dynamic=True)
        self.pipe.build()
        self._in_flight: collections.deque = collections.deque()

    def inputs(self, plan: Plan) -> dict[str, Any]:
        """The external-source inputs of one batch: views into the file plus the plan's boxes."""
        idx = np.asarray(plan.indices, dtype=np.int64)
        get = self.source.image_bytes
        crop = np.asarray(plan.crop, dtype=np.int32)
        feed: dict[str, Any] = {
            "data": [get(int(i)) for i in idx],  # views, no bytes copied
            "anchor": np.ascontiguousarray(crop[:, :2]),
            "shape": np.ascontiguousarray(crop[:, 2:]),
            "flip": np.asarray(plan.flip, dtype=np.int32),
        }
        if self.kind != "jpeg":
            n = len(idx)
            feed["dims"] = np.stack([self._heights[idx], self._widths[idx], np.full(n, 3)], 1).astype(np.int32)
        if self.kind == "mixed":
            feed["is_jpeg"] = self._is_jpeg[idx]
        return feed

    def submit(self, plan: Plan, tag: Any = None) -> None:
        """Feed `plan`'s batch and schedule its run; `tag` comes back with its result."""
        if len(plan) == 0 or len(plan) > self.pipe.max_batch_size:
            raise ValueError(f"a batch of {len(plan)} samples; this pipeline takes 1..{self.pipe.max_batch_size}")
        if plan.img_size != self.img_size:
            raise ValueError(f"plan img_size {plan.img_size} != pipeline img_size {self.img_size}")
        feed = self.inputs(plan)
        for name, value in feed.items():
            self.pipe.feed_input(name, value)
        self.pipe.schedule_run()
        self._in_flight.append((tag, plan, feed))  # keeps the fed views alive until consumed

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def peek_tag(self) -> Any:
        """The tag of the oldest batch in flight (None if none)."""
        return self._in_flight[0][0] if self._in_flight else None

    def last_tag(self) -> Any:
        """The tag of the newest batch in flight (None if none)."""
        return self._in_flight[-1][0] if self._in_flight else None

    def result(self) -> tuple[Any, Plan, torch.Tensor]:
        """(tag, plan, images) of the oldest batch in flight; images uint8 (n, S, S, 3)."""
        if not self._in_flight:
            raise ValueError("no batch in flight: submit a plan first")
        tag, plan, _feed = self._in_flight.popleft()
        stream = torch.cuda.current_stream(self.device) if self.gpu else None
        try:
            (images,) = self.pipe.share_outputs(stream) if self.gpu else self.pipe.share_outputs()
        except RuntimeError as err:
            raise ValueError(
                f"DALI could not decode the batch of epoch {plan.epoch} step {plan.step} "
                f"(dataset indices {plan.indices[:8].tolist()}...): {err}"
            ) from None
        try:
            from nvidia.dali.plugin.pytorch import feed_ndarray

            out = torch.empty((len(plan), self.img_size, self.img_size, 3), dtype=torch.uint8,
                              device=self.device)
            feed_ndarray(images.as_tensor(), out, cuda_stream=stream)
        finally:
            self.pipe.release_outputs()
        return tag, plan, out

    def decode(self, plan: Plan) -> torch.Tensor:
        """Decode one plan's batch and wait for it (nothing else may be in flight)."""
        if self._in_flight:
            raise ValueError("decode() with batches in flight: take their results first")
        self.submit(plan)
        return self.result()[2]

    def drain(self) -> None:
        """Discard every batch in flight (e.g. after set_epoch / load_state_dict)."""
        while self._in_flight:
            self._in_flight.popleft()
            try:
                self.pipe.share_outputs()
            except RuntimeError:
                pass  # a failed batch that nobody will see
            finally:
                self.pipe.release_outputs()

    def close(self) -> None:
        self.drain()
        self.__dict__.pop("pipe", None)

    def __enter__(self) -> DaliDecoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
