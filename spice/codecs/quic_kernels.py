"""numba kernels of the QUIC codec: the row coder and its mirror decoder.

One kernel serves every image type: rows are first unpacked into one
``int64`` plane per channel, so the coding loops see the same shapes for
RGB555 (5 bits per channel) and the 8-bit formats; the bits-per-channel
family only changes the tables passed in.

Channels form *groups* that share one adaptation state (wait counters,
random walk, run-length coder): red, green and blue are one group; the alpha
plane of an RGBA image is a second group coded after them on every row.
Each channel has its own context row and bucket statistics.

The control flow (model segments of WMI_NEXT pixels, the random wait
between model updates, when a run may start and where it must stop) is
dictated by the stream format: the decoder repeats every decision from
pixels it has already decoded, so a single difference desynchronises it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spice.codecs.quic_tables import WMI_MAX, WMI_NEXT

# Per-group adaptation state, one row of an int64 array per group.
ST_WAITCNT = 0  # pixels left before the next model update
ST_SEED = 1  # index into TABRAND
ST_WMIDX = 2  # wait mask index
ST_WMILEFT = 3  # pixels left at this wait mask index
ST_TRIGGER = 4  # counter-halving threshold for this wait mask index
ST_MELCSTATE = 5  # run-length coder state
ST_SIZE = 6

_M32 = 0xFFFFFFFF


@njit(cache=True, nogil=True)
def init_group_state(st: np.ndarray, wm_trigger: np.ndarray) -> None:
    for g in range(st.shape[0]):
        st[g, ST_WAITCNT] = 0
        st[g, ST_SEED] = 0xFF
        st[g, ST_WMIDX] = 0
        st[g, ST_WMILEFT] = WMI_NEXT
        st[g, ST_TRIGGER] = wm_trigger[0]
        st[g, ST_MELCSTATE] = 0


@njit(cache=True, nogil=True)
def update_model(counters, bestcode, corr, bucket_of, code_len, bpc, trigger, c0, c1, idx):
    """Charge the folded value at ``idx`` to the bucket of its context, for
    every channel of the group, and pick the code that would have been
    shortest so far (ties go to the longer code number)."""
    for c in range(c0, c1):
        b = bucket_of[corr[c, idx]]
        val = corr[c, idx + 1]
        best = bpc - 1
        counters[c, b, best] += code_len[val, best]
        best_len = counters[c, b, best]
        for l in range(bpc - 2, -1, -1):
            counters[c, b, l] += code_len[val, l]
            if counters[c, b, l] < best_len:
                best = l
                best_len = counters[c, b, l]
        bestcode[c, b] = best
        if best_len > trigger:
            for l in range(bpc):
                counters[c, b, l] >>= 1


@njit(cache=True, nogil=True)
def _same(plane, c0, c1, a, b):
    for c in range(c0, c1):
        if plane[c, a] != plane[c, b]:
            return False
    return True


# -- encoder -------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _put(out, pos, acc, nbits, value, length):
    """Append ``length`` (<= 32) bits, most significant first, to 32-bit words."""
    acc = (acc << length) | value
    nbits += length
    if nbits >= 32:
        nbits -= 32
        out[pos] = (acc >> nbits) & _M32
        pos += 1
        acc &= (1 << nbits) - 1
    return pos, acc, nbits


@njit(cache=True, nogil=True)
def _fold(d, mask):
    # Small errors first, alternating sign: 0, -1, +1, -2, ... -> 0, 1, 2, 3...
    d &= mask
    return d << 1 if d <= mask >> 1 else ((mask - d) << 1) + 1


@njit(cache=True, nogil=True)
def prepare_row(row, c0, c1, cur, prev, mask, vals, same_left):
    """Model-independent work for one row of a group: the folded prediction
    error of every value, and whether each pixel repeats its left neighbour."""
    width = cur.shape[1]
    for c in range(c0, c1):
        if row == 0:
            vals[c, 0] = _fold(cur[c, 0], mask)
            for i in range(1, width):
                vals[c, i] = _fold(cur[c, i] - cur[c, i - 1], mask)
        else:
            vals[c, 0] = _fold(cur[c, 0] - prev[c, 0], mask)
            for i in range(1, width):
                vals[c, i] = _fold(cur[c, i] - ((cur[c, i - 1] + prev[c, i]) >> 1), mask)
    same_left[0] = False
    same_left[1:] = True
    for c in range(c0, c1):
        for i in range(1, width):
            same_left[i] &= cur[c, i] == cur[c, i - 1]


@njit(cache=True, nogil=True)
def _encode_seg(out, bw, row, i, end, waitmask, trigger, g, c0, c1, vals, same_cur, same_prev,
                corr, st, counters, bestcode, fam_cw, fam_len, bucket_of, bpc, tabrand, melc):
    """Code pixels [i, end) of one row for the channels [c0, c1) of group g.

    ``bw`` carries the bit writer (word count, pending bits, their number)
    and ``st`` the group state across calls; ``fam_cw`` packs each
    codeword with its length (code << 6 | length)."""
    pos, acc, nbits = bw[0], bw[1], bw[2]
    waitcnt = st[g, ST_WAITCNT]
    seed = st[g, ST_SEED]
    ms = st[g, ST_MELCSTATE]
    ml = melc[ms]
    rle = row > 0
    stopidx = 0 if i == 0 else i + waitcnt
    run_index = 0
    first = i == 0
    while True:
        in_run = False
        while i < end:
            # A run may start where the row above repeats its left pixel and
            # the two pixels to the left are equal (never twice at one place).
            if rle and i > 2 and run_index != i and same_prev[i] and same_cur[i - 1]:
                in_run = True
                break
            for c in range(c0, c1):
                v = vals[c, i]
                l = bestcode[c, bucket_of[corr[c, i]]]
                corr[c, i + 1] = v
                cw = fam_cw[v, l]
                n = cw & 0x3F
                acc = (acc << n) | (cw >> 6)
                nbits += n
                if nbits >= 32:
                    nbits -= 32
                    out[pos] = (acc >> nbits) & _M32
                    pos += 1
                    acc &= (1 << nbits) - 1
            if first:
                # The row's first pixel spends the wait carried over from the
                # previous row before drawing a new one.
                first = False
                if waitcnt > 0:
                    waitcnt -= 1
                else:
                    seed = (seed + 1) & 0xFF
                    waitcnt = tabrand[seed] & waitmask
                    update_model(counters, bestcode, corr, bucket_of, fam_len, bpc, trigger,
                                 c0, c1, 0)
                stopidx = 1 + waitcnt
            elif i == stopidx:
                update_model(counters, bestcode, corr, bucket_of, fam_len, bpc, trigger,
                             c0, c1, i)
                seed = (seed + 1) & 0xFF
                stopidx = i + 1 + (tabrand[seed] & waitmask)
            i += 1
        if not in_run:
            waitcnt = stopidx - end
            break
        # A run of pixels equal to their left neighbour: the wait counter
        # pauses while it lasts, and the context row keeps its old values.
        run_index = i
        waitcnt = stopidx - i
        run = 0
        at_end = False
        while same_cur[i]:
            run += 1
            i += 1
            if i == end:
                at_end = True
                break
        # Each full run of the expected length (which then doubles) is a
        # one bit; the remainder follows a zero bit in ml bits.
        while run >= (1 << ml):
            run -= 1 << ml
            if ms < 31:
                ms += 1
                ml = melc[ms]
            acc = (acc << 1) | 1
            nbits += 1
            if nbits == 32:
                nbits = 0
                out[pos] = acc & _M32
                pos += 1
                acc = 0
        n = ml + 1
        acc = (acc << n) | run
        nbits += n
        if nbits >= 32:
            nbits -= 32
            out[pos] = (acc >> nbits) & _M32
            pos += 1
            acc &= (1 << nbits) - 1
        if ms > 0:
            ms -= 1
            ml = melc[ms]
        if at_end:
            break
        stopidx = i + waitcnt
    st[g, ST_WAITCNT] = waitcnt
    st[g, ST_SEED] = seed
    st[g, ST_MELCSTATE] = ms
    bw[0], bw[1], bw[2] = pos, acc, nbits


@njit(cache=True, nogil=True)
def unpack_row(buf, off, width, bpp, is16, ch_off, nch, dst):
    """One row of guest pixels into per-channel planes (r, g, b[, a])."""
    if is16:
        for x in range(width):
            p = off + 2 * x
            v = np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)
            dst[0, x] = (v >> 10) & 0x1F
            dst[1, x] = (v >> 5) & 0x1F
            dst[2, x] = v & 0x1F
    else:
        for c in range(nch):
            o = off + ch_off[c]
            for x in range(width):
                dst[c, x] = buf[o + x * bpp]


@njit(cache=True, nogil=True)
def quic_encode_kernel(buf, row0_off, row_step, width, height, bpp, is16, ch_off, nch, nrgb,
                       header, fam_cw, fam_len, bucket_of, bpc, n_buckets,
                       tabrand, wm_trigger, melc):
    """Encode a whole image; returns (words, count): the stream is the first
    ``count`` u32 words, each to be stored little-endian.

    Row r (top to bottom) starts at byte ``row0_off + r * row_step`` of
    ``buf``; channel c of pixel x is byte ``ch_off[c] + x * bpp`` of the row
    (or a 5-bit field of a little-endian u16 when ``is16``).  Channels
    [0, nrgb) form the first group, [nrgb, nch) the second.
    """
    cur = np.zeros((nch, width), np.int64)
    prev = np.zeros((nch, width), np.int64)
    corr = np.zeros((nch, width + 1), np.int64)
    counters = np.zeros((nch, n_buckets, 8), np.int64)
    bestcode = np.full((nch, n_buckets), bpc - 1, np.int64)
    vals = np.zeros((nch, width), np.int64)
    ngroups = 1 if nrgb == nch else 2
    same_cur = np.zeros((ngroups, width), np.bool_)
    same_prev = np.zeros((ngroups, width), np.bool_)
    st = np.zeros((ngroups, ST_SIZE), np.int64)
    init_group_state(st, wm_trigger)
    # Worst case per row: every value an escape codeword plus a run code per
    # two pixels; checked once per row so the coding loop needs no checks.
    row_words = (width * (nch * 26 + 17) + 63) // 32 + 4
    out = np.empty(max(row_words * 4, (width * height * nch) // 16 + 64), np.uint32)
    bw = np.zeros(3, np.int64)
    for h in header:
        pos, acc, nbits = _put(out, bw[0], bw[1], bw[2], h, 32)
        bw[0], bw[1], bw[2] = pos, acc, nbits
    for row in range(height):
        if bw[0] + row_words > out.shape[0]:
            bigger = np.empty(max(out.shape[0] * 2, bw[0] + row_words), np.uint32)
            bigger[: bw[0]] = out[: bw[0]]
            out = bigger
        cur, prev = prev, cur
        unpack_row(buf, row0_off + row * row_step, width, bpp, is16, ch_off, nch, cur)
        for c in range(nch):
            corr[c, 0] = 0 if row == 0 else corr[c, 1]
        same_cur, same_prev = same_prev, same_cur
        for g in range(ngroups):
            c0 = 0 if g == 0 else nrgb
            c1 = nrgb if g == 0 else nch
            prepare_row(row, c0, c1, cur, prev, (1 << bpc) - 1, vals, same_cur[g])
            x = 0
            rem = width
            while st[g, ST_WMIDX] < WMI_MAX and st[g, ST_WMILEFT] <= rem:
                seg = st[g, ST_WMILEFT]
                if seg > 0:
                    _encode_seg(out, bw, row, x, x + seg, (1 << st[g, ST_WMIDX]) - 1,
                                st[g, ST_TRIGGER], g, c0, c1, vals, same_cur[g], same_prev[g], corr,
                                st, counters, bestcode, fam_cw, fam_len, bucket_of, bpc,
                                tabrand, melc)
                    rem -= seg
                    x += seg
                st[g, ST_WMIDX] += 1
                st[g, ST_TRIGGER] = wm_trigger[min(st[g, ST_WMIDX], 10)]
                st[g, ST_WMILEFT] = WMI_NEXT
            if rem > 0:
                _encode_seg(out, bw, row, x, x + rem, (1 << st[g, ST_WMIDX]) - 1,
                            st[g, ST_TRIGGER], g, c0, c1, vals, same_cur[g], same_prev[g], corr,
                            st, counters, bestcode, fam_cw, fam_len, bucket_of, bpc,
                            tabrand, melc)
                if st[g, ST_WMIDX] < WMI_MAX:
                    st[g, ST_WMILEFT] -= rem
    if out.shape[0] < bw[0] + 3:
        bigger = np.empty(bw[0] + 3, np.uint32)
        bigger[: bw[0]] = out[: bw[0]]
        out = bigger
    pos, acc, nbits = bw[0], bw[1], bw[2]
    if nbits > 0:
        pos, acc, nbits = _put(out, pos, acc, nbits, 0, 32 - nbits)
    # One more zero word: the decoder keeps a full 32-bit window ahead of
    # the bit it is reading and fetches this word before the last codes.
    pos, acc, nbits = _put(out, pos, acc, nbits, 0, 32)
    return out, pos


# -- decoder -------------------------------------------------------------------
#
# The reader keeps a 32-bit window of the stream (``word``) plus the current
# input word, and fetches the next input word only when the window needs its
# first bit, exactly as SPICE clients do: a stream that ends earlier than a
# client would accept is rejected here too.


@njit(cache=True, nogil=True)
def _eat(data, rd, n):
    """Advance the window by ``n`` (1..31) bits; ``rd`` = [word, next, avail, index]."""
    word = (rd[0] << n) & _M32
    avail = rd[2]
    if avail >= n:
        avail -= n
        word |= rd[1] >> avail
    else:
        d = n - avail
        word |= (rd[1] << d) & _M32
        if rd[3] >= data.shape[0]:
            raise ValueError("QUIC stream truncated")
        rd[1] = np.int64(data[rd[3]])
        rd[3] += 1
        avail = 32 - d
        word |= rd[1] >> avail
    rd[0] = word
    rd[2] = avail


@njit(cache=True, nogil=True)
def _clz32(x):
    n = 0
    if x <= 0xFFFF:
        n += 16
        x <<= 16
    if x <= 0xFFFFFF:
        n += 8
        x <<= 8
    if x <= 0xFFFFFFF:
        n += 4
        x <<= 4
    if x <= 0x3FFFFFFF:
        n += 2
        x <<= 2
    if x <= 0x7FFFFFFF:
        n += 1
    return n


@njit(cache=True, nogil=True)
def _decode_run(data, rd, ms, melc, limit):
    """Read one run length (at most ``limit``); returns (length, new state)."""
    ml = melc[ms]
    run = 0
    while True:
        ones = 0
        top = rd[0] >> 24
        while ones < 8 and (top >> (7 - ones)) & 1:
            ones += 1
        for _ in range(ones):
            run += 1 << ml
            if ms < 31:
                ms += 1
                ml = melc[ms]
        if run > limit:
            raise ValueError("QUIC run past the end of the row segment")
        if ones != 8:
            _eat(data, rd, ones + 1)
            break
        _eat(data, rd, 8)
    if ml > 0:
        run += rd[0] >> (32 - ml)
        _eat(data, rd, ml)
    if run > limit:
        raise ValueError("QUIC run past the end of the row segment")
    if ms > 0:
        ms -= 1
    return run, ms


@njit(cache=True, nogil=True)
def _decode_seg(data, rd, row, i, end, waitmask, trigger, g, c0, c1, cur, prev, corr, st,
                counters, bestcode, fam_len, unfold, bucket_of, bpc, n_gr, esc_len, esc_suffix,
                esc_prefix_max, tabrand, melc):
    levels = 1 << bpc
    mask = levels - 1
    waitcnt = st[g, ST_WAITCNT]
    seed = st[g, ST_SEED]
    ms = st[g, ST_MELCSTATE]
    rle = row > 0
    stopidx = 0 if i == 0 else i + waitcnt
    run_index = 0
    first = i == 0
    while True:
        in_run = False
        while i < end:
            if (rle and i > 2 and run_index != i and _same(prev, c0, c1, i - 1, i)
                    and _same(cur, c0, c1, i - 1, i - 2)):
                in_run = True
                break
            for c in range(c0, c1):
                l = bestcode[c, bucket_of[corr[c, i]]]
                word = rd[0]
                if word > esc_prefix_max[l]:
                    zeros = _clz32(word)
                    cwlen = zeros + 1 + l
                    v = (zeros << l) | ((word >> (32 - cwlen)) & ((1 << l) - 1))
                else:
                    cwlen = esc_len[l]
                    v = n_gr[l] + ((word >> (32 - cwlen)) & ((1 << esc_suffix[l]) - 1))
                if v >= levels:
                    raise ValueError("QUIC codeword out of range")
                corr[c, i + 1] = v
                if i == 0:
                    pred = prev[c, 0] if rle else 0
                elif rle:
                    pred = (cur[c, i - 1] + prev[c, i]) >> 1
                else:
                    pred = cur[c, i - 1]
                cur[c, i] = (unfold[v] + pred) & mask
                _eat(data, rd, cwlen)
            if first:
                first = False
                if waitcnt > 0:
                    waitcnt -= 1
                else:
                    seed = (seed + 1) & 0xFF
                    waitcnt = tabrand[seed] & waitmask
                    update_model(counters, bestcode, corr, bucket_of, fam_len, bpc, trigger,
                                 c0, c1, 0)
                stopidx = 1 + waitcnt
            elif i == stopidx:
                update_model(counters, bestcode, corr, bucket_of, fam_len, bpc, trigger,
                             c0, c1, i)
                seed = (seed + 1) & 0xFF
                stopidx = i + 1 + (tabrand[seed] & waitmask)
            i += 1
        if not in_run:
            waitcnt = stopidx - end
            break
        run_index = i
        waitcnt = stopidx - i
        run, ms = _decode_run(data, rd, ms, melc, end - i)
        for _ in range(run):
            for c in range(c0, c1):
                cur[c, i] = cur[c, i - 1]
            i += 1
        if i == end:
            break
        stopidx = i + waitcnt
    st[g, ST_WAITCNT] = waitcnt
    st[g, ST_SEED] = seed
    st[g, ST_MELCSTATE] = ms


@njit(cache=True, nogil=True)
def quic_decode_kernel(data, width, height, nch, nrgb, fam_len, unfold, bucket_of, bpc,
                       n_buckets, n_gr, esc_len, esc_suffix, esc_prefix_max, tabrand,
                       wm_trigger, melc):
    """Decode the pixel rows of a stream whose 5 header words were checked.

    ``data`` holds the whole stream as u32 words.  Returns ``(nch, height,
    width)`` uint8 planes, top row first.  Raises ValueError on a stream a
    SPICE client would reject or that does not describe the image.
    """
    planes = np.empty((nch, height, width), np.uint8)
    cur = np.zeros((nch, width), np.int64)
    prev = np.zeros((nch, width), np.int64)
    corr = np.zeros((nch, width + 1), np.int64)
    counters = np.zeros((nch, n_buckets, 8), np.int64)
    bestcode = np.full((nch, n_buckets), bpc - 1, np.int64)
    ngroups = 1 if nrgb == nch else 2
    st = np.zeros((ngroups, ST_SIZE), np.int64)
    init_group_state(st, wm_trigger)
    # The window starts on word 0; eating the five header words leaves it on
    # the first pixel bit with the same fetches a client makes.
    rd = np.zeros(4, np.int64)
    rd[0] = np.int64(data[0])
    rd[1] = rd[0]
    rd[2] = 0
    rd[3] = 1
    for _ in range(10):
        _eat(data, rd, 16)
    for row in range(height):
        cur, prev = prev, cur
        for c in range(nch):
            corr[c, 0] = 0 if row == 0 else corr[c, 1]
        for g in range(ngroups):
            c0 = 0 if g == 0 else nrgb
            c1 = nrgb if g == 0 else nch
            x = 0
            rem = width
            while st[g, ST_WMIDX] < WMI_MAX and st[g, ST_WMILEFT] <= rem:
                seg = st[g, ST_WMILEFT]
                if seg > 0:
                    _decode_seg(data, rd, row, x, x + seg, (1 << st[g, ST_WMIDX]) - 1,
                                st[g, ST_TRIGGER], g, c0, c1, cur, prev, corr, st, counters,
                                bestcode, fam_len, unfold, bucket_of, bpc, n_gr, esc_len,
                                esc_suffix, esc_prefix_max, tabrand, melc)
                    rem -= seg
                    x += seg
                st[g, ST_WMIDX] += 1
                st[g, ST_TRIGGER] = wm_trigger[min(st[g, ST_WMIDX], 10)]
                st[g, ST_WMILEFT] = WMI_NEXT
            if rem > 0:
                _decode_seg(data, rd, row, x, x + rem, (1 << st[g, ST_WMIDX]) - 1,
                            st[g, ST_TRIGGER], g, c0, c1, cur, prev, corr, st, counters,
                            bestcode, fam_len, unfold, bucket_of, bpc, n_gr, esc_len,
                            esc_suffix, esc_prefix_max, tabrand, melc)
                if st[g, ST_WMIDX] < WMI_MAX:
                    st[g, ST_WMILEFT] -= rem
        for c in range(nch):
            for x in range(width):
                planes[c, row, x] = cur[c, x]
    return planes
