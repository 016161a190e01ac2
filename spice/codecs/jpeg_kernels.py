"""numba kernels of the baseline JPEG encoder.

The arithmetic follows libjpeg's integer code paths so that the output
matches, byte for byte, what spice-server produces with libjpeg-turbo:
fixed-point RGB -> YCbCr (16 fractional bits, Cb/Cr rounded with
0.5 - epsilon), 2x2 chroma averaging with an alternating 1/2 rounding bias,
edge replication to whole blocks and MCUs, the accurate integer DCT (or the
AAN fast DCT that the video encoder asks for), reciprocal quantisation, and
Huffman coding with 0xFF byte stuffing.

One kernel, :func:`encode_scan`, does all of it a row of MCUs (16 pixel
rows) at a time, reading the guest's 32-bit pixels where they lie: nothing
the size of the image is allocated (the caller's output buffer needs room for
the rows coded so far only),
and the working set stays in the first-level caches.  The DCT and the
quantisation are in :mod:`spice.codecs.jpeg_dct`; colour conversion, the
Huffman coder and the driver are here.

How it is written is about what numba's compiler vectorises:

* colour conversion, subsampling and both DCT passes are loops whose
  iterations are independent, over 32-bit values where they cannot
  overflow, indexing views from 0 (with ``base + i`` numba must allow for
  a negative index wrapping around, and the compiler then gathers element
  by element);
* the DCT runs on 16 blocks at once, coefficient-major (see
  :data:`~spice.codecs.jpeg_dct.LANES`), so that each butterfly step is one
  vector operation; the quantisation, which also builds the bit masks of
  non-zero coefficients, is written as LLVM vector operations;
* the Huffman coder visits only the non-zero coefficients, from those
  masks, and writes 64 bits at a time; its state lives in locals, not in
  a small helper returning tuples (numba does not inline such helpers
  when they take arrays, and every call then costs atomic reference count
  updates).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from spice.codecs.jpeg_dct import GROUP, LANES, _transform_row, lane_of
from spice.codecs.jpeg_tables import HUFFMAN_TABLES, huffman_codes

# The Huffman tables (DC luma, AC luma, DC chroma, AC chroma), each
# indexed by symbol, with code length << 32 | code in one word: one load
# per symbol, and 8 KB to bring into the cache after the worker's idle
# between frames.  A module constant, which numba compiles in, rather than an
# argument: every array argument costs the per-frame call a few microseconds
# on a worker that was idle since the last frame.
HUFF = np.stack([(size.astype(np.int64) << 32) | code
                 for code, size in (huffman_codes(bits, vals) for bits, vals in HUFFMAN_TABLES)])
HUFF.flags.writeable = False
# bytes of the coder's 64-bit words, for its test for a 0xFF byte
_ONES = np.uint64(0x0101010101010101)
_HIGH_BITS = np.uint64(0x8080808080808080)
# Source rows are prefetched this far ahead of their colour conversion.  The
# guest has just written the frame, from another core or before the worker's
# idle, and the hardware prefetchers only start on a row once it is being
# read.  Asked ahead, a streamed frame of the demo took the live worker's
# kernel 190 us instead of 206 (and 197 instead of 218 in a second run,
# frames taking turns between the two kernels).
PREFETCH_ROWS = 4

_FIX_0_29900 = 19595  # round(x * 2**16)
_FIX_0_58700 = 38470
_FIX_0_11400 = 7471
_FIX_0_16874 = 11059
_FIX_0_33126 = 21709
_FIX_0_50000 = 32768
_FIX_0_41869 = 27439
_FIX_0_08131 = 5329
_ONE_HALF = 1 << 15
_CBCR_OFFSET = 128 << 16


@intrinsic
def _cttz(typingctx, x):
    """Trailing zero bits of a 64-bit integer (64 for 0)."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))
    return types.int64(x), codegen


@intrinsic
def _ctlz(typingctx, x):
    """Leading zero bits of a 64-bit integer (64 for 0)."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))
    return types.int64(x), codegen


@intrinsic
def _prefetch(typingctx, arr, i):
    """Ask the CPU to bring the cache line of ``arr[i]`` in ahead of use
    (a hint: it never faults, and ``i`` is not bounds-checked)."""
    if not isinstance(arr, types.Array) or not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", [i8p], ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]))
        # a read, to be kept in all cache levels, of data
        builder.call(fn, [builder.bitcast(builder.gep(data, [args[1]]), i8p),
                          ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.none(arr, i), codegen


@njit(cache=True, nogil=True, inline="always")
def _ycc(r, g, b, ybuf, cbp, crp, yi, ci):
    """libjpeg's fixed-point Y, Cb, Cr of one pixel into ``ybuf[yi]``,
    ``cbp[ci]`` and ``crp[ci]``.  32-bit arithmetic throughout (nothing
    here overflows it) lets the compiler use twice as many vector lanes as
    numba's default 64-bit."""
    r = np.int32(r)
    g = np.int32(g)
    b = np.int32(b)
    ybuf[yi] = np.int32(np.int32(_FIX_0_29900) * r + np.int32(_FIX_0_58700) * g
                        + np.int32(_FIX_0_11400) * b + np.int32(_ONE_HALF)) >> np.int32(16)
    cbp[ci] = np.int32(np.int32(-_FIX_0_16874) * r - np.int32(_FIX_0_33126) * g
                       + np.int32(_FIX_0_50000) * b
                       + np.int32(_CBCR_OFFSET + _ONE_HALF - 1)) >> np.int32(16)
    crp[ci] = np.int32(np.int32(_FIX_0_50000) * r - np.int32(_FIX_0_41869) * g
                       - np.int32(_FIX_0_08131) * b
                       + np.int32(_CBCR_OFFSET + _ONE_HALF - 1)) >> np.int32(16)


@njit(cache=True, nogil=True)
def _convert_row(px, o, width, pw, ybuf, cbp, crp, yo, co):
    """Y, Cb, Cr of the ``width`` x8r8g8b8 pixels at ``px[o]`` into the
    flat rows ``ybuf[yo:yo + pw]``, ``cbp[co:co + pw]`` and ``crp[co:co +
    pw]``, the last pixel repeated past ``width``.

    The loop indexes views from 0: with ``o + x`` numba must allow for a
    negative index wrapping around, and the compiler then gathers and
    scatters element by element instead of using whole vectors.  The
    three outputs are different arrays so that one run-time overlap check
    suffices."""
    src = px[o:o + width]
    y = ybuf[yo:yo + pw]
    cb = cbp[co:co + pw]
    cr = crp[co:co + pw]
    for x in range(width):
        p = src[x]
        _ycc((p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF, y, cb, cr, x, x)
    for x in range(width, pw):
        y[x] = y[width - 1]
        cb[x] = cb[width - 1]
        cr[x] = cr[width - 1]


@njit(cache=True, nogil=True)
def _downsample(pair, pw, cbuf, out):
    """``pw // 2`` 2x2 averages of the two flat rows of ``pair`` into
    ``cbuf[out:]``, with libjpeg's alternating 1, 2 rounding bias."""
    cw = pw // 2  # even: whole MCUs
    top = pair[:pw]
    bottom = pair[pw:2 * pw]
    dst = cbuf[out:out + cw]
    # Two outputs a step, so that the bias is a constant and every value
    # 32-bit (the index's parity would bring in 64-bit lanes).
    for i in range(cw // 2):
        dst[2 * i] = np.int32(top[4 * i] + top[4 * i + 1] + bottom[4 * i] + bottom[4 * i + 1]
                              + 1) >> np.int32(2)
        dst[2 * i + 1] = np.int32(top[4 * i + 2] + top[4 * i + 3] + bottom[4 * i + 2]
                                  + bottom[4 * i + 3] + 2) >> np.int32(2)


@njit(cache=True, nogil=True, inline="always")
def _magnitude(x):
    """(bit count, the low bits JPEG sends) of a coefficient: negatives go
    as ``x - 1`` in the same number of bits."""
    sign = x >> 63
    n = 64 - _ctlz((x ^ sign) - sign)
    return n, (x + sign) & ((np.int64(1) << n) - 1)


@njit(cache=True, nogil=True)
def _entropy_row(q, masks, mcu_cols, huff, state, out):
    """Huffman-code the MCU row's blocks, whose quantised coefficients the
    transform left in ``q`` (``masks`` marks the non-zero ones), onto
    ``out`` in scan order: four luma blocks, then Cb and Cr, per MCU.
    ``state`` carries (output position, bit buffer, bits in it, last DC of
    Y, Cb, Cr) from one MCU row to the next.

    Each symbol goes out with its value bits in one step, into a 64-bit
    buffer written out 8 bytes at a time, as libjpeg-turbo's coder does:
    half the flushes of a 32-bit buffer, and so half their hard-to-predict
    branches, which cost most on the worker's first frame after an idle."""
    pos = state[0]
    acc = np.uint64(state[1])  # the low 64 - free bits are pending
    free = 64 - state[2]
    for mx in range(mcu_cols):
        for blk in range(6):
            t = 0 if blk < 4 else 2
            comp = 0 if blk < 4 else blk - 3
            lane = lane_of(mcu_cols, mx, blk)
            o = lane // LANES * GROUP + lane % LANES
            # The DC difference, then the AC coefficients as (zero run, size)
            # symbols, then end of block unless coefficient 63 was the last.
            # One place in the loop writes every symbol: numba would not
            # keep the bit writer's state in registers across a helper.
            dc = np.int64(q[o])
            n, v = _magnitude(dc - state[3 + comp])
            state[3 + comp] = dc
            e = huff[t, n]
            code = np.uint64(((e & 0xFFFFFFFF) << n) | v)
            length = (e >> 32) + n  # at most 16 + 11 bits
            last = 0
            m = masks[lane] & ~np.int64(1)
            while True:
                free -= length
                if free >= 0:
                    acc = (acc << length) | code
                else:
                    # The buffer's pending bits and the top of this code
                    # fill a word; the rest of the code stays pending (the
                    # bits above them are shifted out before they count).
                    word = (acc << (length + free)) | (code >> -free)
                    acc = code
                    free += 64
                    inv = ~word
                    if ((inv - _ONES) & ~inv & _HIGH_BITS) == 0:  # no 0xFF byte
                        for j in range(8):
                            out[pos + j] = (word >> np.uint64(56 - 8 * j)) & np.uint64(0xFF)
                        pos += 8
                    else:
                        for j in range(8):
                            byte = (word >> np.uint64(56 - 8 * j)) & np.uint64(0xFF)
                            out[pos] = byte
                            pos += 1
                            if byte == 0xFF:
                                out[pos] = 0
                                pos += 1
                if m == 0:
                    if last >= 63:
                        break
                    e = huff[t + 1, 0]  # end of block
                    code = np.uint64(e & 0xFFFFFFFF)
                    length = e >> 32
                    last = 64
                    continue
                k = _cttz(m)
                run = k - last - 1
                if run > 15:  # sixteen zeros
                    e = huff[t + 1, 0xF0]
                    code = np.uint64(e & 0xFFFFFFFF)
                    length = e >> 32
                    last += 16
                    continue
                m &= m - 1
                n, v = _magnitude(np.int64(q[o + k * LANES]))
                e = huff[t + 1, (run << 4) | n]
                code = np.uint64(((e & 0xFFFFFFFF) << n) | v)
                length = (e >> 32) + n
                last = k
    state[0] = pos
    state[1] = np.int64(acc)
    state[2] = 64 - free


@njit(cache=True, nogil=True)
def _mcu_row(px, start, step, width, height, my, pw, ybuf, cbp, crp, cbuf):
    """Colour-convert and subsample the 16 pixel rows of MCU row ``my``
    into ``ybuf`` (16 flat luma rows of ``pw``) and ``cbuf`` (8 rows of Cb,
    then 8 of Cr, of ``pw // 2``).  Rows past the bottom repeat the last
    one, before subsampling (an odd last row pairs with itself) and after
    (as libjpeg pads).  The buffers are flat and rows are passed as offsets;
    the functions that loop over a row take their views of it."""
    cw = pw // 2
    half = (height + 1) // 2  # chroma rows holding image data
    for k in range(8):
        y2 = my * 8 + k
        if y2 < half:
            for j in range(2):
                y = min(2 * y2 + j, height - 1)
                if y + PREFETCH_ROWS < height:
                    ahead = start + (y + PREFETCH_ROWS) * step
                    for x in range(0, width, 16):  # a 64-byte line
                        _prefetch(px, ahead + x)
                _convert_row(px, start + y * step, width, pw, ybuf, cbp, crp, (2 * k + j) * pw,
                             j * pw)
            _downsample(cbp, pw, cbuf, k * cw)
            _downsample(crp, pw, cbuf, (8 + k) * cw)
        else:
            last = half - 1 - my * 8
            src = (2 * last + 1) * pw
            for j in range(2):
                ybuf[(2 * k + j) * pw:(2 * k + j + 1) * pw] = ybuf[src:src + pw]
            for c in range(2):
                o = (8 * c + last) * cw
                cbuf[(8 * c + k) * cw:(8 * c + k + 1) * cw] = cbuf[o:o + cw]


@njit(cache=True, nogil=True)
def encode_scan(data, start, step, width, height, div_y, div_c, fast, out):
    """Write into ``out`` the entropy-coded data (without markers) of a
    4:2:0 scan of the x8r8g8b8 pixels whose image row ``y`` starts at pixel
    ``start + y * step`` of ``data``, the flat bytes of those little-endian
    words (a guest bitmap where it lies: taking the word view here, not in
    Python, keeps that numpy call off the per-frame path).  Returns the
    number of bytes, or, when ``out`` might not hold the next row, minus
    the size to call again with.

    ``div_y``/``div_c`` are the quantisation divisors in zig-zag order.
    The caller owns ``out``, and an integer is returned rather than a new
    array: boxing an array costs the call more than ten microseconds on a
    worker that was idle since the last frame."""
    px = data[:(data.size >> 2) << 2].view(np.uint32)
    mcu_cols = (width + 15) // 16
    mcu_rows = (height + 15) // 16
    y_bw = (width + 7) // 8
    y_bh = (height + 7) // 8
    pw = mcu_cols * 16
    margin = 8 * LANES  # see _load_run
    yplane = np.zeros(16 * pw + 2 * margin, np.int32)
    ybuf = yplane[margin:margin + 16 * pw]
    cbp = np.empty(2 * pw, np.int32)  # a pair of rows of Cb
    crp = np.empty(2 * pw, np.int32)
    cplane = np.zeros(8 * pw + 2 * margin, np.int32)
    cbuf = cplane[margin:margin + 8 * pw]  # eight subsampled rows of Cb, eight of Cr
    groups = (4 * mcu_cols + LANES - 1) // LANES + (2 * mcu_cols + LANES - 1) // LANES
    t = np.empty(GROUP, np.int32)
    tmp = np.empty(GROUP, np.int32)
    q = np.empty(groups * GROUP, np.int16)  # quantised values fit in 12 bits
    masks = np.empty(groups * LANES, np.int64)
    state = np.zeros(6, np.int64)
    # Worst case per block: 27 + 63 * 26 bits, every byte stuffed.  For the
    # whole image that is about 100 times what a video frame takes (20 MB
    # for a 1920x1080 frame): before each row the output only needs room
    # for that row's worst case.
    row_worst = mcu_cols * 6 * 420
    for my in range(mcu_rows):
        if state[0] + row_worst + 16 > out.size:
            return -(2 * out.size + 2 * row_worst + 16)
        _mcu_row(px, start, step, width, height, my, pw, ybuf, cbp, crp, cbuf)
        _transform_row(yplane, cplane, margin, mcu_cols, my, y_bw, y_bh, div_y, div_c, fast, t,
                       tmp, q, masks)
        _entropy_row(q, masks, mcu_cols, HUFF, state, out)
    pos = state[0]
    acc = state[1]
    nacc = state[2]
    while nacc >= 8:  # whole bytes still in the accumulator
        nacc -= 8
        byte = (acc >> nacc) & 0xFF
        out[pos] = byte
        pos += 1
        if byte == 0xFF:
            out[pos] = 0
            pos += 1
    if nacc > 0:
        # Pad the last byte with one bits.
        byte = ((acc << (8 - nacc)) | ((1 << (8 - nacc)) - 1)) & 0xFF
        out[pos] = byte
        pos += 1
        if byte == 0xFF:
            out[pos] = 0
            pos += 1
    return pos
