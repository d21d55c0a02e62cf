import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from tandem import tt_decompose, tt_ranks
from tandem.signals.rank_window import RankWindow
from tandem.signals.tt_rank import auto_dims, max_ranks, parse_dims


def planted(shape, ranks, seed=0):
    """A random tensor in TT format with exactly the given TT ranks."""
    rng = np.random.default_rng(seed)
    full_ranks = [1, *ranks, 1]
    cores = [rng.standard_normal((full_ranks[k], n, full_ranks[k + 1])) for k, n in enumerate(shape)]
    out = cores[0]
    for c in cores[1:]:
        out = np.tensordot(out, c, axes=([-1], [0]))
    return out.reshape(shape)


@pytest.mark.parametrize(
    "shape,ranks",
    [((10, 16, 16, 6), [3, 20, 5]), ((10, 16, 14, 4), [7, 40, 4]), ((10, 8, 16, 7), [2, 9, 6]), ((6, 5, 4), [2, 3])],
)
def test_planted_ranks_are_recovered(shape, ranks):
    x = planted(shape, ranks)
    assert tt_ranks(x, eps=1e-6) == ranks


def test_accepts_torch_and_returns_python_ints():
    x = torch.from_numpy(planted((10, 16, 16, 6), [4, 30, 6])).float()
    r = tt_ranks(x, eps=1e-4)
    assert r == [4, 30, 6] and all(type(v) is int for v in r)


@settings(max_examples=40, deadline=None)
@given(
    eps=st.floats(0.01, 0.6),
    w=st.integers(2, 12),
    seed=st.integers(0, 10_000),
    dims=st.sampled_from([(16, 14, 4), (8, 16, 7), (4, 4), (16, 16, 6)]),
)
def test_reconstruction_meets_eps_bound(eps, w, seed, dims):
    """Theorem 1: ||X - TT(X)||_F <= eps ||X||_F, with the kept cores."""
    rng = np.random.default_rng(seed)
    # correlated rows, like consecutive hidden states: a few directions plus noise
    base = rng.standard_normal((3, int(np.prod(dims))))
    x = (rng.standard_normal((w, 3)) @ base + 0.3 * rng.standard_normal((w, int(np.prod(dims))))).reshape((w, *dims))
    tt = tt_decompose(x, eps)
    err = np.linalg.norm(x - tt.full()) / np.linalg.norm(x)
    assert err <= eps + 1e-9
    assert all(1 <= r <= m for r, m in zip(tt.ranks, max_ranks(w, dims)))


def test_smaller_eps_never_lowers_ranks():
    x = np.random.default_rng(3).standard_normal((10, 16, 14, 4))
    loose, tight = tt_ranks(x, 0.3), tt_ranks(x, 0.05)
    assert all(a <= b for a, b in zip(loose, tight))


def test_auto_dims_matches_paper_and_handles_896():
    assert auto_dims(1536) == (16, 16, 6)
    assert auto_dims(896) == (16, 14, 4)
    assert np.prod(auto_dims(1000)) == 1000
    assert parse_dims("8x16x7", 896) == (8, 16, 7)
    with pytest.raises(ValueError, match="multiply to"):
        parse_dims("16x16x4", 896)
    with pytest.raises(ValueError, match="look like"):
        parse_dims("sixteen", 896)


def test_rank_window_yields_ranks_once_full():
    win = RankWindow(hidden_size=896, window=4, eps=0.1)
    rng = np.random.default_rng(0)
    assert [win.push(rng.standard_normal(896)) for _ in range(3)] == [None, None, None]
    r = win.push(rng.standard_normal(896))
    assert r is not None and r[0] == 4 and len(win.history) == 1
    win.push(rng.standard_normal(896))
    assert len(win.history) == 2


def test_identical_steps_collapse_to_rank_one():
    h = np.random.default_rng(1).standard_normal(896)
    win = RankWindow(hidden_size=896, window=5)
    for _ in range(5):
        r = win.push(h)
    assert r[0] == 1


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.floats(0.02, 0.5))
def test_r1_matches_plain_svd_of_the_step_unfolding(seed, eps):
    """Cross-check against numpy's SVD: r1 is the smallest rank of the W x d unfolding within the budget."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((10, 3)) @ rng.standard_normal((3, 896)) + 0.2 * rng.standard_normal((10, 896))
    s = np.linalg.svd(x, compute_uv=False)
    budget = eps**2 * np.sum(x * x) / 3
    expected = next(r for r in range(1, 11) if np.sum(s[r:] ** 2) <= budget)
    assert tt_ranks(x.reshape(10, 16, 14, 4), eps)[0] == expected
