"""Numba kernels of the GLZ ("global LZ") image codec.

GLZ codes pixels like LZ (passes, literals, lengths: see lz_kernels) but a
match may copy from an earlier image still in the client's window.  Match:

    ctrl: L (3 bits, 7 = extension bytes follow as in LZ) | long-offset flag
          (bit 4) | offset bits 0-3
    byte: offset bits 4-11
    short offset (< 4096):
        byte: image-distance byte count k (2 bits) | distance bits 0-5,
        then k bytes of distance bits 6-13, 14-21, 22-29
    long offset:
        byte: k (2 bits) | very-long flag (bit 5) | offset bits 12-16,
        then k bytes of distance (little-endian),
        then, if very long, one byte of offset bits 17-24

Image distance 0 means the current image and the offset is the backward
distance minus one; otherwise the match starts ``offset`` pixels into the
image ``distance`` ids back.

The encoder's window lives in a ring of pixel values indexed by absolute
pixel position ``& rmask``; per-image metadata lives in rings indexed by
``image_id & mmask``; the hash table holds (position, image id) pairs in
buckets of ``ways``, newest first.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spice.codecs.lz_kernels import (
    ERR_BAD_IMAGE_REFERENCE,
    ERR_BAD_REFERENCE,
    ERR_MISSING_IMAGE,
    ERR_OVERRUN,
    ERR_TRUNCATED,
    GOOD_MATCH,
    MAX_COPY,
    SKIP_SHIFT,
    match_length,
    put_length_extension,
    put_literals,
)

SHORT_OFFSET = 1 << 12
MEDIUM_OFFSET = 1 << 17
MAX_IMAGE_DIST = (1 << 24) - 1


@njit(cache=True, nogil=True)
def ref_cost(image_dist, offset):
    """Bytes of a GLZ match reference, without length-extension bytes."""
    if offset < SHORT_OFFSET:
        if image_dist < 1 << 6:
            return 3
        if image_dist < 1 << 14:
            return 4
        if image_dist < 1 << 22:
            return 5
        return 6
    cost = 3
    if image_dist >= 1 << 16:
        cost = 6
    elif image_dist >= 1 << 8:
        cost = 5
    elif image_dist > 0:
        cost = 4
    if offset >= MEDIUM_OFFSET:
        cost += 1
    return cost


@njit(cache=True, nogil=True)
def put_glz_match(out, op, length_field, image_dist, offset):
    long_flag = 16 if offset >= SHORT_OFFSET else 0
    if length_field < 7:
        out[op] = (length_field << 5) | long_flag | (offset & 15)
        op += 1
    else:
        out[op] = (7 << 5) | long_flag | (offset & 15)
        op = put_length_extension(out, op + 1, length_field)
    out[op] = (offset >> 4) & 255
    op += 1
    if offset < SHORT_OFFSET:
        extra = 0
        if image_dist >= 1 << 22:
            extra = 3
        elif image_dist >= 1 << 14:
            extra = 2
        elif image_dist >= 1 << 6:
            extra = 1
        out[op] = (extra << 6) | (image_dist & 63)
        op += 1
        for k in range(extra):
            out[op] = (image_dist >> (6 + 8 * k)) & 255
            op += 1
        return op
    very_long = 32 if offset >= MEDIUM_OFFSET else 0
    extra = 0
    if image_dist >= 1 << 16:
        extra = 3
    elif image_dist >= 1 << 8:
        extra = 2
    elif image_dist > 0:
        extra = 1
    out[op] = (extra << 6) | very_long | ((offset >> 12) & 31)
    op += 1
    for k in range(extra):
        out[op] = (image_dist >> (8 * k)) & 255
        op += 1
    if very_long:
        out[op] = (offset >> 17) & 255
        op += 1
    return op


@njit(cache=True, nogil=True)
def _insert(htab, ways, bucket, pos, image_id):
    base = bucket * 2 * ways
    for w in range(ways - 1, 0, -1):
        htab[base + w] = htab[base + w - 1]
        htab[base + ways + w] = htab[base + ways + w - 1]
    htab[base] = pos
    htab[base + ways] = image_id


@njit(cache=True, nogil=True)
def window_hash(ring, p, rmask, shift, kmask, count, bits):
    """Hash of the keys of ``count`` pixels from ring position ``p``."""
    h = 0
    for k in range(count):
        h = (h * 0x5BD1E995 + ((np.int64(ring[(p + k) & rmask]) >> shift) & kmask)) & 0xFFFFFFFF
    # The shift salts the hash: colour and alpha passes of RGBA images keep
    # to different buckets of the shared table.
    h ^= (h >> 15) + shift
    h = (h & 0xFFFFFFFF) * 0x2C1B3C6D
    return (h >> 20) & ((1 << bits) - 1)


@njit(cache=True, nogil=True)
def _locate(cid, cpos, p, rem, start, cur_id, head_id, cur_type, meta_start, meta_npix,
            meta_type, mmask):
    """Check a hash-table candidate: returns (limit, offset, image distance)
    of a match at ``cpos`` in image ``cid``, limit -1 when it is unusable."""
    if cid == cur_id:
        if cpos >= p or cpos < start:
            return -1, 0, 0
        return rem, p - cpos - 1, 0
    if cid < head_id or cid > cur_id or cur_id - cid > MAX_IMAGE_DIST:
        return -1, 0, 0
    slot = cid & mmask
    first = meta_start[slot]
    if meta_type[slot] != cur_type or cpos < first:
        return -1, 0, 0
    return min(rem, first + meta_npix[slot] - cpos), cpos - first, cur_id - cid


@njit(inline="always")
def _measure(ring, rmask, p, cpos, limit, offset, dist, shift, kmask, pb, fmt_min,
             best_len, best_off, best_dist, best_gain):
    """Measure the match at ``cpos`` and keep it if it saves more bytes than
    the best so far."""
    if limit < fmt_min:
        return best_len, best_off, best_dist, best_gain
    # A candidate that differs where the best match so far still matched
    # cannot be longer.
    if best_len > 0 and best_len < limit and (
        (np.int64(ring[(cpos + best_len) & rmask]) ^ np.int64(ring[(p + best_len) & rmask]))
        >> shift
    ) & kmask:
        return best_len, best_off, best_dist, best_gain
    length = match_length(ring, rmask, cpos, p, limit, shift, kmask)
    cost = ref_cost(dist, offset)
    if length >= fmt_min and length * pb > cost:
        gain = length * pb - cost
        if gain > best_gain:
            return length, offset, dist, gain
    return best_len, best_off, best_dist, best_gain


@njit(cache=True, nogil=True)
def glz_compress(ring, rmask, start, n, row, cur_id, head_id, cur_type,
                 meta_start, meta_npix, meta_type, mmask,
                 htab, hbits, ways, shift, kmask, pb, fmt_min, hash_n, rep_id, rep_delta, out, op):
    """Append one GLZ pass over the current image (ring positions ``start ..
    start + n``, ``row`` pixels per row) to ``out`` at ``op``; returns the
    new end.  Candidates must belong to images ``head_id .. cur_id`` of type
    ``cur_type``, found in ``htab``: buckets of ``ways`` positions then
    ``ways`` image ids, keyed by a hash of ``hash_n`` pixels.
    ``rep_id``/``rep_delta``: an earlier image and the displacement to try
    at every position until a match elsewhere in an older image replaces it
    (-1: none).  ``out`` must hold ``n * (pb + 1) + 16`` more bytes."""
    i = 0
    lit = 0
    misses = 0
    last_dist = 0  # backward distance of the last match within this image
    while i < n:
        p = start + i
        rem = n - i
        best_len = 0
        best_off = 0
        best_dist = 0
        best_gain = 0
        # Cheap candidates first: a run, the row above, the last distance
        # within this image and the last displacement into an older one.
        if i > 0:
            best_len, best_off, best_dist, best_gain = _measure(
                ring, rmask, p, p - 1, rem, 0, 0, shift, kmask, pb, fmt_min, 0, 0, 0, 0)
        if i >= row:
            best_len, best_off, best_dist, best_gain = _measure(
                ring, rmask, p, p - row, rem, row - 1, 0, shift, kmask, pb, fmt_min,
                best_len, best_off, best_dist, best_gain)
        if last_dist > 1 and last_dist != row and i >= last_dist:
            best_len, best_off, best_dist, best_gain = _measure(
                ring, rmask, p, p - last_dist, rem, last_dist - 1, 0, shift, kmask, pb,
                fmt_min, best_len, best_off, best_dist, best_gain)
        if rep_id >= 0:
            limit, offset, dist = _locate(rep_id, p + rep_delta, p, rem, start, cur_id, head_id,
                                          cur_type, meta_start, meta_npix, meta_type, mmask)
            best_len, best_off, best_dist, best_gain = _measure(
                ring, rmask, p, p + rep_delta, limit, offset, dist, shift, kmask, pb, fmt_min,
                best_len, best_off, best_dist, best_gain)
        if rem >= hash_n and rem >= fmt_min:
            bucket = window_hash(ring, p, rmask, shift, kmask, hash_n, hbits)
            base = bucket * 2 * ways
            for w in range(ways):
                cpos = htab[base + w]
                if best_len >= GOOD_MATCH or cpos < 0:
                    break
                limit, offset, dist = _locate(htab[base + ways + w], cpos, p, rem, start, cur_id,
                                              head_id, cur_type, meta_start, meta_npix,
                                              meta_type, mmask)
                best_len, best_off, best_dist, best_gain = _measure(
                    ring, rmask, p, cpos, limit, offset, dist, shift, kmask, pb, fmt_min,
                    best_len, best_off, best_dist, best_gain)
            _insert(htab, ways, bucket, p, cur_id)
        if best_len == 0:
            # Incompressible stretches are skipped faster and faster.
            misses += 1
            i = min(n, i + 1 + (misses >> SKIP_SHIFT))
            continue
        misses = 0
        if best_dist == 0:
            last_dist = best_off + 1
        else:
            rep_id = cur_id - best_dist
            rep_delta = meta_start[rep_id & mmask] + best_off - p
        op = put_literals(out, op, ring, start + lit, p, rmask, pb, shift)
        op = put_glz_match(out, op, best_len - fmt_min + 1, best_dist, best_off)
        end = i + best_len
        for j in range(max(end - 2, i + 1), end):
            if j + hash_n <= n:
                bucket = window_hash(ring, start + j, rmask, shift, kmask, hash_n, hbits)
                _insert(htab, ways, bucket, start + j, cur_id)
        i = end
        lit = end
    return put_literals(out, op, ring, start + lit, start + n, rmask, pb, shift)


@njit(cache=True, nogil=True)
def _client_pixel(data, ip, pb, rgb16):
    """A literal as the client stores it: x8r8g8b8 (16-bit widened its way)."""
    if rgb16:
        hi = np.int64(data[ip])
        lo = np.int64(data[ip + 1])
        g = ((hi << 6) | (lo >> 2)) & 0xF8
        g |= g >> 5
        r = (((hi << 1) & 0xF8) | ((hi >> 4) & 7)) & 0xFF
        b = ((lo << 3) | ((lo >> 2) & 7)) & 0xFF
        return (r << 16) | (g << 8) | b
    if pb == 3:
        return np.int64(data[ip]) | (np.int64(data[ip + 1]) << 8) | (np.int64(data[ip + 2]) << 16)
    return np.int64(data[ip])


@njit(cache=True, nogil=True)
def glz_decompress(data, ip, out, n, pb, fmt_min, alpha, rgb16, cur_id,
                   win_ids, win_start, win_npix, store):
    """Decode one GLZ pass of image ``cur_id`` (``n`` pixels) from
    ``data[ip:]`` into ``out`` as the client does: 32-bit pixels, alpha
    passes writing the top byte only.  Earlier images are ``store`` slices
    listed by ascending ``win_ids``.  Returns the position after the pass
    or a negative ERR_* code."""
    end = data.size
    op = 0
    while op < n:
        if ip >= end:
            return ERR_TRUNCATED
        ctrl = np.int64(data[ip])
        ip += 1
        if ctrl >= MAX_COPY:
            length = ctrl >> 5
            long_flag = (ctrl >> 4) & 1
            offset = ctrl & 15
            if length == 7:
                while True:
                    if ip >= end:
                        return ERR_TRUNCATED
                    code = np.int64(data[ip])
                    ip += 1
                    length += code
                    if code != 255:
                        break
            if ip + 2 > end:
                return ERR_TRUNCATED
            offset += np.int64(data[ip]) << 4
            code = np.int64(data[ip + 1])
            ip += 2
            extra = code >> 6
            if ip + extra > end:
                return ERR_TRUNCATED
            dist = 0
            if long_flag == 0:
                dist = code & 63
                for k in range(extra):
                    dist += np.int64(data[ip + k]) << (6 + 8 * k)
                ip += extra
            else:
                very_long = (code >> 5) & 1
                offset += (code & 31) << 12
                for k in range(extra):
                    dist += np.int64(data[ip + k]) << (8 * k)
                ip += extra
                if very_long:
                    if ip >= end:
                        return ERR_TRUNCATED
                    offset += np.int64(data[ip]) << 17
                    ip += 1
            length += fmt_min - 1
            if op + length > n:
                return ERR_OVERRUN
            if dist == 0:
                ref = op - offset - 1
                if ref < 0:
                    return ERR_BAD_REFERENCE
                if alpha:
                    for k in range(length):
                        out[op + k] = (out[op + k] & 0xFFFFFF) | (out[ref + k] & 0xFF000000)
                else:
                    for k in range(length):
                        out[op + k] = out[ref + k]
            else:
                want = cur_id - dist
                lo = 0
                hi = win_ids.size
                while lo < hi:
                    mid = (lo + hi) // 2
                    if win_ids[mid] < want:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo >= win_ids.size or win_ids[lo] != want:
                    return ERR_MISSING_IMAGE
                if offset + length > win_npix[lo]:
                    return ERR_BAD_IMAGE_REFERENCE
                src = win_start[lo] + offset
                if alpha:
                    for k in range(length):
                        out[op + k] = (out[op + k] & 0xFFFFFF) | (store[src + k] & 0xFF000000)
                else:
                    for k in range(length):
                        out[op + k] = store[src + k]
            op += length
        else:
            count = ctrl + 1
            if op + count > n:
                return ERR_OVERRUN
            if ip + count * pb > end:
                return ERR_TRUNCATED
            for k in range(count):
                v = _client_pixel(data, ip, pb, rgb16)
                ip += pb
                if alpha:
                    out[op + k] = (out[op + k] & 0xFFFFFF) | (v << 24)
                else:
                    out[op + k] = v
            op += count
    return ip
