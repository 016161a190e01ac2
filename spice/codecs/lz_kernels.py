"""Numba kernels of the LZ image codec, and helpers the GLZ kernels share.

Pixels reach the kernels as one uint32 per pixel ("values"): 0xXXRRGGBB for
24/32-bit (the top byte is never looked at), 0xAARRGGBB for RGBA, the raw
16-bit word for RGB16 and the byte itself for palette indices and alpha.  A
*pass* reads a key out of each value (``(value >> shift) & kmask``) and
writes ``pb`` bytes per literal pixel:

    pass            shift  kmask     pb  fmt_min
    RGB24/RGB32       0    0xffffff   3     1
    RGB16             0    0x7fff     2     2   (bit 15 is ignored by clients)
    alpha of RGBA    24    0xff       1     3
    PLT / A8 bytes    0    0xff       1     3

``fmt_min`` is the match length a length field of 1 stands for: the SPICE
decoders add ``fmt_min - 1`` to the length they read.

LZ stream (after the header), a sequence of
  * literal run: ctrl = count - 1 (0..31), then count pixels of ``pb`` bytes;
  * match: ctrl = (L << 5) | high bits of the distance, L = 1..7; L == 7 is
    followed by extension bytes (255 ... 255, last < 255) added to L; then
    the low 8 distance bits.  Distance d >= 1 is sent as d - 1: near when
    d - 1 < 8191 (13 bits), otherwise the 13 bits are all ones and two more
    bytes carry d - 1 - 8191 (big-endian).
Matches may overlap their own output (runs are distance 1).
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_COPY = 32  # literals per run
LZ_NEAR_LIMIT = 8191  # biased near distances are below this
LZ_MAX_DISTANCE = LZ_NEAR_LIMIT + 65535 + 1
GOOD_MATCH = 64  # stop searching once a match this long is found
SKIP_SHIFT = 6  # after 2**SKIP_SHIFT positions without a match, step 2, and so on
ALL_BITS = 0x7FFFFFFFFFFFFFFF  # index mask for flat (non-ring) arrays

# Decoder error codes (negative kernel results).
ERR_TRUNCATED = -1
ERR_BAD_REFERENCE = -2
ERR_OVERRUN = -3
ERR_MISSING_IMAGE = -4
ERR_BAD_IMAGE_REFERENCE = -5
DECODE_ERRORS = {
    ERR_TRUNCATED: "stream ends in the middle of the image",
    ERR_BAD_REFERENCE: "reference before the start of the image",
    ERR_OVERRUN: "run or copy goes past the end of the image",
    ERR_MISSING_IMAGE: "reference to an image the client does not hold",
    ERR_BAD_IMAGE_REFERENCE: "reference past the end of the referenced image",
}


@njit(inline="always")
def key_at(values, idx, shift, kmask):
    return (np.int64(values[idx]) >> shift) & kmask


@njit(cache=True, nogil=True)
def hash_at(values, p, shift, kmask, hash_n, hbits):
    """Hash of the keys of 2 or 3 pixels from ``p``."""
    k0 = (np.int64(values[p]) >> shift) & kmask
    k1 = (np.int64(values[p + 1]) >> shift) & kmask
    k2 = 0
    if hash_n > 2:
        k2 = (np.int64(values[p + 2]) >> shift) & kmask
    # Keys are < 2**24 and the multipliers < 2**31, so nothing overflows int64.
    h = k0 * 0x2F0B3C5D + k1 * 0x1E35A7BD + k2 * 0x61C88647
    h ^= h >> 27
    h = (h & 0x7FFFFFFF) * 0x5BD1E995
    return (h >> 23) & ((1 << hbits) - 1)


@njit(cache=True, nogil=True)
def put_pixel(out, op, v, pb, shift):
    if pb == 3:  # b, g, r
        out[op] = v & 255
        out[op + 1] = (v >> 8) & 255
        out[op + 2] = (v >> 16) & 255
        return op + 3
    if pb == 2:  # 16-bit pixels go big-endian
        out[op] = (v >> 8) & 255
        out[op + 1] = v & 255
        return op + 2
    out[op] = (v >> shift) & 255
    return op + 1


@njit(cache=True, nogil=True)
def put_literals(out, op, values, start, end, mask, pb, shift):
    while start < end:
        count = min(MAX_COPY, end - start)
        out[op] = count - 1
        op += 1
        for k in range(count):
            op = put_pixel(out, op, np.int64(values[(start + k) & mask]), pb, shift)
        start += count
    return op


@njit(cache=True, nogil=True)
def put_length_extension(out, op, length_field):
    rest = length_field - 7
    while rest >= 255:
        out[op] = 255
        op += 1
        rest -= 255
    out[op] = rest
    return op + 1


@njit(cache=True, nogil=True)
def get_pixel(data, ip, pb):
    if pb == 3:
        return np.int64(data[ip]) | (np.int64(data[ip + 1]) << 8) | (np.int64(data[ip + 2]) << 16)
    if pb == 2:
        return (np.int64(data[ip]) << 8) | np.int64(data[ip + 1])
    return np.int64(data[ip])


@njit(cache=True, nogil=True)
def put_lz_match(out, op, length_field, biased_distance):
    if biased_distance < LZ_NEAR_LIMIT:
        hi = biased_distance >> 8
        if length_field < 7:
            out[op] = (length_field << 5) | hi
            op += 1
        else:
            out[op] = (7 << 5) | hi
            op = put_length_extension(out, op + 1, length_field)
        out[op] = biased_distance & 255
        return op + 1
    far = biased_distance - LZ_NEAR_LIMIT
    if length_field < 7:
        out[op] = (length_field << 5) | 31
        op += 1
    else:
        out[op] = 255
        op = put_length_extension(out, op + 1, length_field)
    out[op] = 255
    out[op + 1] = far >> 8
    out[op + 2] = far & 255
    return op + 3


@njit(inline="always")
def match_length(values, mask, a, b, limit, shift, kmask):
    """Pixels from ``a`` and ``b`` on with equal keys, at most ``limit``."""
    length = 0
    while length < limit and not (
        (np.int64(values[(a + length) & mask]) ^ np.int64(values[(b + length) & mask])) >> shift
    ) & kmask:
        length += 1
    return length


@njit(inline="always")
def _lz_consider(values, i, cand, rem, shift, kmask, pb, near_min, far_min,
                 best_len, best_dist, best_gain):
    dist = i - cand
    if cand < 0 or dist <= 0 or dist > LZ_MAX_DISTANCE:
        return best_len, best_dist, best_gain
    # A candidate that differs where the best match so far still matched
    # cannot be longer.
    if best_len > 0 and best_len < rem and key_at(values, cand + best_len, shift, kmask) != (
        key_at(values, i + best_len, shift, kmask)
    ):
        return best_len, best_dist, best_gain
    length = match_length(values, ALL_BITS, cand, i, rem, shift, kmask)
    near = dist <= LZ_NEAR_LIMIT
    if length >= (near_min if near else far_min):
        gain = length * pb - (2 if near else 4)
        if gain > best_gain:
            return length, dist, gain
    return best_len, best_dist, best_gain


@njit(cache=True, nogil=True)
def lz_compress(values, n, row, shift, kmask, pb, fmt_min, hash_n, hbits, max_chain, out, op):
    """Append one LZ pass over ``values[:n]`` (``row`` units per image row) to
    ``out`` at ``op``; returns the new end.  ``out`` must hold at least
    ``n * (pb + 1) + 16`` more bytes."""
    head = np.full(1 << hbits, -1, np.int32)
    prev = np.empty(max(n, 1), np.int32)
    # A match must beat its literals by at least the control byte it may cost.
    near_min = max(fmt_min, (3 + pb - 1) // pb)
    far_min = max(fmt_min, (5 + pb - 1) // pb)
    i = 0
    lit = 0
    last_dist = 0
    misses = 0
    while i < n:
        rem = n - i
        best_len = 0
        best_dist = 0
        best_gain = 0
        if rem >= near_min:
            # Cheap candidates first: a run, the row above, the last distance.
            best_len, best_dist, best_gain = _lz_consider(
                values, i, i - 1, rem, shift, kmask, pb, near_min, far_min, 0, 0, 0)
            best_len, best_dist, best_gain = _lz_consider(
                values, i, i - row, rem, shift, kmask, pb, near_min, far_min,
                best_len, best_dist, best_gain)
            if last_dist > 1 and last_dist != row:
                best_len, best_dist, best_gain = _lz_consider(
                    values, i, i - last_dist, rem, shift, kmask, pb, near_min, far_min,
                    best_len, best_dist, best_gain)
        if rem >= hash_n and rem >= near_min:
            h = hash_at(values, i, shift, kmask, hash_n, hbits)
            cand = head[h]
            chain = 0
            while cand >= 0 and chain < max_chain and best_len < GOOD_MATCH:
                if i - cand > LZ_MAX_DISTANCE:
                    break
                best_len, best_dist, best_gain = _lz_consider(
                    values, i, cand, rem, shift, kmask, pb, near_min, far_min,
                    best_len, best_dist, best_gain)
                cand = prev[cand]
                chain += 1
            prev[i] = head[h]
            head[h] = i
        if best_len == 0:
            # Incompressible stretches are skipped faster and faster.
            misses += 1
            i = min(n, i + 1 + (misses >> SKIP_SHIFT))
            continue
        misses = 0
        last_dist = best_dist
        op = put_literals(out, op, values, lit, i, ALL_BITS, pb, shift)
        op = put_lz_match(out, op, best_len - fmt_min + 1, best_dist - 1)
        end = i + best_len
        for j in range(max(end - 2, i + 1), end):
            if j + hash_n <= n:
                h = hash_at(values, j, shift, kmask, hash_n, hbits)
                prev[j] = head[h]
                head[h] = j
        i = end
        lit = end
    return put_literals(out, op, values, lit, n, ALL_BITS, pb, shift)


@njit(cache=True, nogil=True)
def lz_decompress(data, ip, out, n, pb, fmt_min, alpha):
    """Decode one LZ pass of ``n`` pixels from ``data[ip:]`` into ``out``.
    With ``alpha`` only the top byte of each ``out`` value is written.
    Returns the position after the pass, or a negative ERR_* code."""
    end = data.size
    op = 0
    while op < n:
        if ip >= end:
            return ERR_TRUNCATED
        ctrl = np.int64(data[ip])
        ip += 1
        if ctrl >= MAX_COPY:
            length = ctrl >> 5
            dist = (ctrl & 31) << 8
            if length == 7:
                while True:
                    if ip >= end:
                        return ERR_TRUNCATED
                    code = np.int64(data[ip])
                    ip += 1
                    length += code
                    if code != 255:
                        break
            if ip >= end:
                return ERR_TRUNCATED
            code = np.int64(data[ip])
            ip += 1
            dist += code
            if code == 255 and (ctrl & 31) == 31:
                if ip + 2 > end:
                    return ERR_TRUNCATED
                dist = ((np.int64(data[ip]) << 8) | np.int64(data[ip + 1])) + LZ_NEAR_LIMIT
                ip += 2
            length += fmt_min - 1
            ref = op - dist - 1
            if ref < 0:
                return ERR_BAD_REFERENCE
            if op + length > n:
                return ERR_OVERRUN
            if alpha:
                for k in range(length):
                    out[op + k] = (out[op + k] & 0xFFFFFF) | (out[ref + k] & 0xFF000000)
            else:
                for k in range(length):
                    out[op + k] = out[ref + k]
            op += length
        else:
            count = ctrl + 1
            if op + count > n:
                return ERR_OVERRUN
            if ip + count * pb > end:
                return ERR_TRUNCATED
            for k in range(count):
                v = get_pixel(data, ip, pb)
                ip += pb
                if alpha:
                    out[op + k] = (out[op + k] & 0xFFFFFF) | (v << 24)
                else:
                    out[op + k] = v
            op += count
    return ip
