"""spice.region: every operation agrees with a pixel mask, results are canonical."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spice import region

SIZE = 24


def mask_of(r: np.ndarray) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), bool)
    for t, lf, b, rt in r:
        assert not m[t:b, lf:rt].any(), "rectangles of a region overlap"
        m[t:b, lf:rt] = True
    return m


def assert_canonical(r: np.ndarray) -> None:
    assert r.dtype == np.int32 and r.ndim == 2 and r.shape[1] == 4
    bands = []
    for t, lf, b, rt in r:
        assert t < b and lf < rt
        if bands and bands[-1][0] == (t, b):
            assert lf > bands[-1][1][-1][1], "spans of a band overlap or touch"
            bands[-1][1].append((lf, rt))
        else:
            if bands:
                assert t >= bands[-1][0][1], "bands out of order"
            bands.append(((t, b), [(lf, rt)]))
    for (p, ps), (q, qs) in zip(bands, bands[1:], strict=False):
        assert not (p[1] == q[0] and ps == qs), "adjacent equal bands not merged"


rects_st = st.lists(
    st.tuples(st.integers(0, SIZE), st.integers(0, SIZE), st.integers(0, SIZE),
              st.integers(0, SIZE)).map(lambda v: (min(v[0], v[2]), min(v[1], v[3]),
                                                   max(v[0], v[2]), max(v[1], v[3]))),
    max_size=7)


def build(rs) -> tuple[np.ndarray, np.ndarray]:
    r = region.from_rects(np.array(rs, np.int32).reshape(-1, 4))
    m = np.zeros((SIZE, SIZE), bool)
    for t, lf, b, rt in rs:
        m[t:b, lf:rt] = True
    return r, m


@settings(max_examples=300, deadline=None)
@given(rects_st, rects_st)
def test_operations_match_pixel_masks(ra, rb):
    a, ma = build(ra)
    b, mb = build(rb)
    for r in (a, b):
        assert_canonical(r)
    assert (mask_of(a) == ma).all()
    u, i, d = region.union(a, b), region.intersect(a, b), region.subtract(a, b)
    for r in (u, i, d):
        assert_canonical(r)
    assert (mask_of(u) == (ma | mb)).all()
    assert (mask_of(i) == (ma & mb)).all()
    assert (mask_of(d) == (ma & ~mb)).all()
    assert region.intersects(a, b) == bool((ma & mb).any())
    assert region.contains(a, b) == (not (mb & ~ma).any())
    assert region.area(a) == int(ma.sum())
    assert region.is_empty(a) == (not ma.any())
    # one set of pixels has one canonical form
    assert region.equal(region.union(b, a), u)
    assert region.equal(region.from_rects(region.rects(u)), u)


def test_extents_translate_and_single_rectangles():
    r = region.from_rects([(2, 3, 5, 9), (7, 1, 8, 4)])
    assert region.extents(r) == (2, 1, 8, 9)
    moved = region.translate(r, 10, -2)
    assert region.extents(moved) == (0, 11, 6, 19)
    assert region.area(moved) == region.area(r) == 3 * 6 + 3
    assert region.is_empty(region.rect(4, 4, 4, 9))
    assert region.extents(region.EMPTY) == (0, 0, 0, 0)
    whole = region.rect(0, 0, 10, 10)
    assert region.contains(whole, r) and not region.contains(r, whole)
    assert region.contains(region.rect(0, 0, 10, 10), region.rect(1, 1, 9, 9))
    assert region.is_empty(region.subtract(region.rect(1, 1, 9, 9), whole))
    assert region.equal(region.subtract(whole, region.rect(20, 20, 30, 30)), whole)
    hole = region.subtract(whole, region.rect(3, 3, 6, 6))
    assert region.rects(hole) == [(0, 0, 3, 10), (3, 0, 6, 3), (3, 6, 6, 10), (6, 0, 10, 10)]
    assert not region.intersects(hole, region.rect(3, 3, 6, 6))
    assert region.intersects(hole, region.rect(5, 5, 7, 7))


def test_a_rectangle_is_one_shared_read_only_value():
    a = region.rect(3, 4, 10, 12)
    assert region.rect(3, 4, 10, 12) is a
    try:
        a[0, 0] = 0
    except ValueError:
        pass
    else:
        raise AssertionError("a region array could be changed in place")
    # an operand against itself
    assert region.is_empty(region.subtract(a, a))
    assert region.equal(region.union(a, a), a) and region.equal(region.intersect(a, a), a)
    assert region.contains(a, a) and region.equal(a, a)
    assert region.extents(a) == (3, 4, 10, 12) and region.area(a) == 7 * 8


def test_rectangles_stay_right_after_the_cache_is_refilled():
    # far more distinct rectangles than the cache keeps: arrays handed out
    # earlier keep their own extents and area
    early = [region.rect(i, 0, i + 1 + i % 5, 7) for i in range(50)]
    for i in range(5000):
        region.rect(i, 1, i + 2, 3)
    for i, r in enumerate(early):
        h = 1 + i % 5
        assert region.extents(r) == (i, 0, i + h, 7)
        assert region.area(r) == h * 7
        assert region.rects(r) == [(i, 0, i + h, 7)]


def test_computed_regions_are_read_only_and_share_one_kernel_specialisation():
    # Every region handed out is read-only, computed ones included: numba
    # specialises its kernels on that flag, and a new mix of flags would
    # load another specialisation from the cache on the worker, mid-session.
    a = region.rect(0, 0, 10, 10)
    hole = region.subtract(a, region.rect(3, 3, 6, 6))
    results = [hole, region.union(hole, region.rect(2, 2, 12, 4)),
               region.intersect(hole, region.rect(1, 1, 8, 8)),
               region.translate(hole, 2, 3),
               region.from_rects([(0, 0, 4, 4), (2, 2, 6, 6)])]
    for r in results:
        assert not r.flags.writeable
    before = set(region.region_op.signatures)
    # computed regions meet cached rectangles and each other
    for x in results:
        region.subtract(x, a)
        region.union(a, x)
        region.intersect(results[0], x)
        region.contains(x, results[1])
        region.intersects(results[2], x)
    # (other tests may have passed writable arrays of their own before)
    for sig in set(region.region_op.signatures) - before:
        assert all(t.mutable is False for t in sig[:2]), sig
    read_only = [sig for sig in region.region_op.signatures
                 if not sig[0].mutable and not sig[1].mutable]
    assert len(read_only) == 1
