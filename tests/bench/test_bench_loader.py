"""The CPU loader bench's A/B rows: region decoding beside whole-image decoding."""

import pytest

from fastdeit.bench.loader import main
from fastdeit.data.cpu_decoder import REGION_DECODE_AVAILABLE


@pytest.mark.slow
@pytest.mark.skipif(not REGION_DECODE_AVAILABLE, reason="_jpeg_region not built")
def test_decode_ab_times_fastdeit_with_region_and_whole_image_decoding():
    result = main(["--images", "64", "--max-res", "64", "--workers", "1", "--rounds", "1",
                   "--no-reference", "--decode-ab", "--json", ""])
    rows = {r["loader"]: r for r in result["rows"]}
    assert result["region_decode"] is True
    for name in ("fastdeit FastLoader (threads, region decode)", "fastdeit FastLoader full decode (threads)"):
        assert rows[name]["img_per_s"] > 0
    assert result["ratios"][0]["rate_vs_ffcv"] is None or result["ratios"][0]["rate_vs_ffcv"] > 0
