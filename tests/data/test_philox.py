"""Philox4x32-10 against Random123's known-answer tests, and its derived distributions."""

import numpy as np
import pytest
from scipy import stats

from fastdeit.data import philox

# Random123 kat_vectors: philox4x32 10 rounds (counter, key, expected output).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_known_answer_vectors(counter, key, expected):
    out = philox.philox4x32(np.array(counter, dtype=np.uint32), key)
    assert tuple(int(x) for x in out) == expected


def test_vectorised_matches_one_at_a_time():
    ctr = np.array([KAT[0][0], KAT[2][0]], dtype=np.uint32)
    out = philox.philox4x32(ctr, (0, 0))
    assert np.array_equal(out[0], philox.philox4x32(ctr[0], (0, 0)))
    assert np.array_equal(out[1], philox.philox4x32(ctr[1], (0, 0)))


def test_uniform_is_a_pure_function_of_its_keys():
    idx = np.arange(1000)
    a = philox.uniform(1, 2, idx, 3, 5)
    assert a.shape == (1000, 5) and a.dtype == np.float64
    assert np.array_equal(a, philox.uniform(1, 2, idx, 3, 5))
    assert np.array_equal(a[500:], philox.uniform(1, 2, idx[500:], 3, 5))  # no hidden state
    for other in [(2, 2, 3), (1, 3, 3), (1, 2, 4)]:
        assert not np.array_equal(a, philox.uniform(other[0], other[1], idx, other[2], 5))
    assert a.min() >= 0.0 and a.max() < 1.0


def test_uniform_normal_beta_distributions():
    idx = np.arange(20000)
    u = philox.uniform(0, 0, idx, 0, 1)[:, 0]
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    z = philox.normal(0, 0, idx, 1, 1)[:, 0]
    assert stats.kstest(z, "norm").pvalue > 1e-3
    for a in (0.8, 1.0, 2.5):
        b = philox.beta(0, 0, idx, 10, a, a)
        assert stats.kstest(b, stats.beta(a, a).cdf).pvalue > 1e-3, a


@pytest.mark.parametrize("bad", [-1, 2**32])
def test_out_of_range_keys_are_refused(bad):
    with pytest.raises(ValueError):
        philox.uniform(bad, 0, np.arange(3), 0, 1)
    with pytest.raises(ValueError):
        philox.uniform(0, bad, np.arange(3), 0, 1)
    with pytest.raises(ValueError):
        philox.uniform(0, 0, np.array([bad]), 0, 1)
