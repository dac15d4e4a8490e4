"""Interop with the real FFCV library (1.0.x), both directions. Skipped only where FFCV is not
installed (it needs libturbojpeg and OpenCV; CI installs them)."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from tests.extras import import_extra

ffcv = import_extra("ffcv", "ffcv")
cv2 = import_extra("cv2", "ffcv")

# numba (under FFCV's Loader) can report a harmless KeyError from a dispatcher finalizer at teardown
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

from ffcv.fields import IntField, RGBImageField  # noqa: E402
from ffcv.fields.decoders import CenterCropRGBImageDecoder, IntDecoder, RandomResizedCropRGBImageDecoder  # noqa: E402
from ffcv.loader import Loader, OrderOption  # noqa: E402
from ffcv.reader import Reader  # noqa: E402
from ffcv.writer import DatasetWriter  # noqa: E402

from fastdeit.data.beton import BetonReader  # noqa: E402
from fastdeit.data.beton import layout as L  # noqa: E402
from fastdeit.data.prepare import prepare_dataset  # noqa: E402
from fastdeit.data.sample_images import photo_crops, write_image_folder  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def load_all(path, pipeline) -> tuple[np.ndarray, np.ndarray]:
    loader = Loader(str(path), batch_size=4, num_workers=1, order=OrderOption.SEQUENTIAL, drop_last=False,
                    pipelines={"image": pipeline, "label": [IntDecoder()]})  # fmt: skip
    images, labels = zip(*[(np.asarray(a).copy(), np.asarray(b).copy()) for a, b in loader])
    del loader
    gc.collect()  # let numba's finalizers run here, under this module's warning filter
    return np.concatenate(images), np.concatenate(labels).reshape(-1)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ffcv_in")
    write_image_folder(tmp / "src", num_classes=3, per_class=3, size=(96, 64))
    out = tmp / "fastdeit.beton"
    prepare_dataset(tmp / "src", out, max_res=64, quality=90, workers=1, progress=False, page_size=L.MIN_PAGE_SIZE)
    return out


def test_ffcv_reader_parses_our_tables(prepared):
    ours, theirs = BetonReader(prepared), Reader(str(prepared))
    assert int(theirs.num_samples) == len(ours) == 9
    assert theirs.field_names == ["image", "label"]
    np.testing.assert_array_equal(theirs.metadata["f1"], ours.labels)
    np.testing.assert_array_equal(theirs.metadata["f0"]["width"], ours.widths)
    assert len(theirs.alloc_table) == 9


def test_ffcv_loader_reads_prepared_file(prepared):
    r = BetonReader(prepared)
    assert (r.widths == 64).all() and (r.heights == 42).all()
    # center crop: FFCV crops the central square and resizes it with OpenCV's area filter
    center, labels = load_all(prepared, [CenterCropRGBImageDecoder((32, 32), ratio=1.0)])
    np.testing.assert_array_equal(labels, r.labels)
    for i in range(len(r)):
        full = r.decode(i)
        want = cv2.resize(full[:, 11:53], (32, 32), interpolation=cv2.INTER_AREA)
        assert center[i].shape == (32, 32, 3)
        assert psnr(center[i], want) > 35, i  # same image up to JPEG decoder rounding
    # random resized crop with scale 1 and the image's own aspect ratio: the whole image
    aspect = 64 / 42
    whole, labels = load_all(prepared, [RandomResizedCropRGBImageDecoder((40, 48), scale=(1, 1), ratio=(aspect, aspect))])
    np.testing.assert_array_equal(labels, r.labels)
    for i in range(len(r)):
        want = cv2.resize(r.decode(i), (48, 40), interpolation=cv2.INTER_AREA)
        assert psnr(whole[i], want) > 35, i


@pytest.mark.parametrize("mode", ["raw", "jpg"])
def test_fastdeit_reads_ffcv_written_file(tmp_path, mode):
    images = photo_crops(4, (70, 50), seed=5) + photo_crops(3, (50, 70), seed=6)
    labels = [3, 1, 4, 1, 5, 9, 2]
    path = tmp_path / f"ffcv_{mode}.beton"
    writer = DatasetWriter(str(path), {"image": RGBImageField(write_mode=mode, max_resolution=64, jpeg_quality=95),
                                       "label": IntField()}, num_workers=1)  # fmt: skip
    writer.from_indexed_dataset(list(zip(images, labels)))
    r = BetonReader(path)
    assert r.labels.tolist() == labels and r.num_classes == 10
    assert r.is_jpeg.all() if mode == "jpg" else not r.is_jpeg.any()
    for i, im in enumerate(images):
        want = im
        h, w = im.shape[:2]
        if max(h, w) > 64:  # FFCV's resizer: floor(ratio * size), area filter
            ratio = 64 / max(h, w)
            want = cv2.resize(im, (int(ratio * w), int(ratio * h)), interpolation=cv2.INTER_AREA)
        got = r.decode(i)
        assert got.shape == want.shape
        if mode == "raw":
            np.testing.assert_array_equal(got, want)
        else:
            ref = cv2.cvtColor(cv2.imdecode(np.asarray(r.image_bytes(i)), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            assert np.abs(got.astype(int) - ref).max() <= 2  # libjpeg-turbo vs OpenCV's libjpeg
            assert psnr(got, want) > 30


def test_fastdeit_reads_ffcv_file_with_other_fields_and_order(tmp_path):
    from ffcv.fields import BytesField, FloatField

    images = photo_crops(3, (40, 30), seed=7)
    path = tmp_path / "mixed.beton"
    fields = {"weight": FloatField(), "label": IntField(), "blob": BytesField(), "image": RGBImageField(write_mode="raw")}
    samples = [(0.5 * k, 10 + k, np.frombuffer(b"x" * (k + 1), np.uint8), im) for k, im in enumerate(images)]
    DatasetWriter(str(path), fields, num_workers=1).from_indexed_dataset(samples)
    r = BetonReader(path)
    assert r.field_names == ["weight", "label", "blob", "image"]
    assert (r.image_field, r.label_field) == ("image", "label")
    assert r.labels.tolist() == [10, 11, 12]
    for i, im in enumerate(images):
        np.testing.assert_array_equal(r.decode(i), im)
