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
the size of the image is allocated besides the output, and the working set
stays in the first-level caches.

How it is written is about what numba's compiler vectorises:

* colour conversion, subsampling and both DCT passes are loops whose
  iterations are independent, over 32-bit values where they cannot
  overflow, indexing views from 0 (with ``base + i`` numba must allow for
  a negative index wrapping around, and the compiler then gathers element
  by element);
* the DCT runs on 16 blocks at once, coefficient-major (see LANES), so
  that each butterfly step is one vector operation; the quantisation,
  which also builds the bit masks of non-zero coefficients, is written as
  LLVM vector operations (:func:`_quantise`);
* the Huffman coder visits only the non-zero coefficients, from those
  masks, and writes 32 bits at a time; its state lives in locals, not in
  a small helper returning tuples (numba does not inline such helpers
  when they take arrays, and every call then costs atomic reference count
  updates).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from spice.codecs.jpeg_tables import ZIGZAG

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
    cw = pw // 2
    top = pair[:pw]
    bottom = pair[pw:2 * pw]
    dst = cbuf[out:out + cw]
    for x in range(cw):
        dst[x] = (top[2 * x] + top[2 * x + 1] + bottom[2 * x] + bottom[2 * x + 1]
                  + 1 + (x & 1)) >> 2


# The transform works on 16 blocks at once, stored coefficient-major: in a
# group of LANES blocks, coefficient k of block l is at k * LANES + l.  Each
# step of the DCT and the quantisation is then the same operation on 16
# neighbouring values, which the compiler turns into vector instructions.
LANES = 16
GROUP = 64 * LANES


@njit(cache=True, nogil=True, inline="always")
def _descale(x, n):
    return (x + (1 << (n - 1))) >> n


@njit(cache=True, nogil=True, inline="always")
def _islow_pass(t, base, step, first):
    """One pass of libjpeg's accurate integer DCT over the eight values
    ``t[base + i * step]`` of every lane, in place.  The first pass (rows)
    keeps 2 extra fraction bits, the second (columns) removes them."""
    sh = 11 if first else 15
    for lane in range(LANES):
        i = base + lane
        d0 = np.int64(t[i])
        d1 = np.int64(t[i + step])
        d2 = np.int64(t[i + 2 * step])
        d3 = np.int64(t[i + 3 * step])
        d4 = np.int64(t[i + 4 * step])
        d5 = np.int64(t[i + 5 * step])
        d6 = np.int64(t[i + 6 * step])
        d7 = np.int64(t[i + 7 * step])
        tmp0 = d0 + d7
        tmp7 = d0 - d7
        tmp1 = d1 + d6
        tmp6 = d1 - d6
        tmp2 = d2 + d5
        tmp5 = d2 - d5
        tmp3 = d3 + d4
        tmp4 = d3 - d4
        tmp10 = tmp0 + tmp3
        tmp13 = tmp0 - tmp3
        tmp11 = tmp1 + tmp2
        tmp12 = tmp1 - tmp2
        if first:
            t[i] = (tmp10 + tmp11) << 2
            t[i + 4 * step] = (tmp10 - tmp11) << 2
        else:
            t[i] = _descale(tmp10 + tmp11, 2)
            t[i + 4 * step] = _descale(tmp10 - tmp11, 2)
        z1 = (tmp12 + tmp13) * 4433
        t[i + 2 * step] = _descale(z1 + tmp13 * 6270, sh)
        t[i + 6 * step] = _descale(z1 - tmp12 * 15137, sh)
        z1 = tmp4 + tmp7
        z2 = tmp5 + tmp6
        z3 = tmp4 + tmp6
        z4 = tmp5 + tmp7
        z5 = (z3 + z4) * 9633
        tmp4 *= 2446
        tmp5 *= 16819
        tmp6 *= 25172
        tmp7 *= 12299
        z1 *= -7373
        z2 *= -20995
        z3 = z3 * -16069 + z5
        z4 = z4 * -3196 + z5
        t[i + 7 * step] = _descale(tmp4 + z1 + z3, sh)
        t[i + 5 * step] = _descale(tmp5 + z2 + z4, sh)
        t[i + 3 * step] = _descale(tmp6 + z2 + z3, sh)
        t[i + step] = _descale(tmp7 + z1 + z4, sh)


@njit(cache=True, nogil=True, inline="always")
def _mul8(x, c):
    return np.int32(np.int32(x) * np.int32(c)) >> np.int32(8)


@njit(cache=True, nogil=True, inline="always")
def _ifast_pass(t, base, step):
    """One pass of the AAN fast integer DCT (8-bit constants, truncating)
    over the eight values ``t[base + i * step]`` of every lane, in place.
    Its values fit 32-bit arithmetic, which doubles the vector lanes."""
    for lane in range(LANES):
        i = base + lane
        d0 = t[i]
        d1 = t[i + step]
        d2 = t[i + 2 * step]
        d3 = t[i + 3 * step]
        d4 = t[i + 4 * step]
        d5 = t[i + 5 * step]
        d6 = t[i + 6 * step]
        d7 = t[i + 7 * step]
        tmp0 = np.int32(d0 + d7)
        tmp7 = np.int32(d0 - d7)
        tmp1 = np.int32(d1 + d6)
        tmp6 = np.int32(d1 - d6)
        tmp2 = np.int32(d2 + d5)
        tmp5 = np.int32(d2 - d5)
        tmp3 = np.int32(d3 + d4)
        tmp4 = np.int32(d3 - d4)
        tmp10 = np.int32(tmp0 + tmp3)
        tmp13 = np.int32(tmp0 - tmp3)
        tmp11 = np.int32(tmp1 + tmp2)
        tmp12 = np.int32(tmp1 - tmp2)
        t[i] = tmp10 + tmp11
        t[i + 4 * step] = tmp10 - tmp11
        z1 = _mul8(tmp12 + tmp13, 181)
        t[i + 2 * step] = tmp13 + z1
        t[i + 6 * step] = tmp13 - z1
        tmp10 = np.int32(tmp4 + tmp5)
        tmp11 = np.int32(tmp5 + tmp6)
        tmp12 = np.int32(tmp6 + tmp7)
        z5 = _mul8(tmp10 - tmp12, 98)
        z2 = np.int32(_mul8(tmp10, 139) + z5)
        z4 = np.int32(_mul8(tmp12, 334) + z5)
        z3 = _mul8(tmp11, 181)
        z11 = np.int32(tmp7 + z3)
        z13 = np.int32(tmp7 - z3)
        t[i + 5 * step] = z13 + z2
        t[i + 3 * step] = z13 - z2
        t[i + step] = z11 + z4
        t[i + 7 * step] = z11 - z4


@intrinsic
def _quantise(typingctx, t, q, qoff, div, masks, moff):
    """Quantise the group of DCT outputs ``t`` (natural order) into
    ``q[qoff:qoff + GROUP]`` in zig-zag order, libjpeg-turbo's way:
    ``((|x| + corr) * recip) >> shift`` in 32-bit arithmetic, sign restored,
    with ``div`` rows (recip, corr, shift) in zig-zag order.  Sets
    ``masks[moff + l]`` to the zig-zag positions of block ``l``'s non-zero
    coefficients, as bits.

    Written as LLVM vector operations, one 16-lane vector per coefficient,
    because numba's loops do not get there: with the lanes as the inner
    loop the compiler vectorises across coefficients instead, with gathers
    and scatters, and the bit masks turn into a chain of stores and loads.
    Here they stay in registers as a vector of 64-bit masks."""
    def contiguous(a, dtype, ndim):
        return isinstance(a, types.Array) and (a.dtype, a.ndim, a.layout) == (dtype, ndim, "C")
    if not (contiguous(t, types.int32, 1) and contiguous(q, types.int32, 1)
            and contiguous(div, types.int32, 2) and contiguous(masks, types.int64, 1)):
        return None
    ZIG = [int(z) for z in ZIGZAG]

    def codegen(context, builder, signature, args):
        t_, q_, qoff_, div_, masks_, moff_ = args
        tys = signature.args
        tdata, qdata, ddata, mdata = (context.make_array(tys[i])(context, builder, args[i]).data
                                      for i in (0, 1, 3, 4))
        c32 = ir.IntType(32)
        c64 = ir.IntType(64)
        v32 = ir.VectorType(c32, LANES)
        v64 = ir.VectorType(c64, LANES)

        def vector(data, offset, vty):
            return builder.bitcast(builder.gep(data, [offset]), vty.as_pointer())

        def broadcast(row, k):
            x = builder.load(builder.gep(ddata, [ir.Constant(c64, 64 * row + k)]))
            v = builder.insert_element(ir.Constant(v32, ir.Undefined), x, ir.Constant(c32, 0))
            return builder.shuffle_vector(v, ir.Constant(v32, ir.Undefined),
                                          ir.Constant(v32, [0] * LANES))

        mask = ir.Constant(v64, [0] * LANES)
        for k in range(64):
            x = builder.load(vector(tdata, ir.Constant(c64, ZIG[k] * LANES), v32), align=4)
            sign = builder.ashr(x, ir.Constant(v32, [31] * LANES))
            a = builder.sub(builder.xor(x, sign), sign)
            v = builder.ashr(builder.mul(builder.add(a, broadcast(1, k)), broadcast(0, k)),
                             broadcast(2, k))
            builder.store(builder.sub(builder.xor(v, sign), sign),
                          vector(qdata, builder.add(qoff_, ir.Constant(c64, k * LANES)), v32),
                          align=4)
            # bit 63 as a signed constant: llvmlite takes the value modulo 2**64
            bit = ir.Constant(v64, [(1 << k) - (1 << 64 if k == 63 else 0)] * LANES)
            nonzero = builder.icmp_signed("!=", v, ir.Constant(v32, [0] * LANES))
            mask = builder.select(nonzero, builder.or_(mask, bit), mask)
        builder.store(mask, vector(mdata, moff_, v64), align=8)
        return context.get_dummy_value()

    return types.none(t, q, qoff, div, masks, moff), codegen


@njit(cache=True, nogil=True)
def _transform_group(t, q, qoff, masks, m0, div, fast):
    """DCT and quantise the LANES level-shifted blocks in ``t`` (one
    group), rows first, then columns, into ``q[qoff:]`` and ``masks[m0:]``
    (see :func:`_quantise`)."""
    for r in range(8):
        if fast:
            _ifast_pass(t, 8 * r * LANES, LANES)
        else:
            _islow_pass(t, 8 * r * LANES, LANES, True)
    for c in range(8):
        if fast:
            _ifast_pass(t, c * LANES, 8 * LANES)
        else:
            _islow_pass(t, c * LANES, 8 * LANES, False)
    _quantise(t, q, qoff, div, masks, m0)


@njit(cache=True, nogil=True)
def _load_blocks(plane, base, stride, t):
    """LANES horizontally adjacent blocks, the first at ``plane[base]``,
    level shifted into the group ``t``.  Each row of eight values per
    block is one interleaved load the compiler does with vector shuffles
    (only for a constant count: hence whole groups)."""
    for r in range(8):
        src = plane[base + r * stride:base + r * stride + 8 * LANES]
        dst = t[8 * r * LANES:8 * (r + 1) * LANES]
        for lane in range(LANES):
            dst[lane] = src[8 * lane] - 128
            dst[LANES + lane] = src[8 * lane + 1] - 128
            dst[2 * LANES + lane] = src[8 * lane + 2] - 128
            dst[3 * LANES + lane] = src[8 * lane + 3] - 128
            dst[4 * LANES + lane] = src[8 * lane + 4] - 128
            dst[5 * LANES + lane] = src[8 * lane + 5] - 128
            dst[6 * LANES + lane] = src[8 * lane + 6] - 128
            dst[7 * LANES + lane] = src[8 * lane + 7] - 128


@njit(cache=True, nogil=True)
def _load_run(plane, base, stride, t, tmp, l0, n):
    """Blocks ``plane[base]``, ``plane[base + 8]``... into lanes ``l0`` to
    ``l0 + n - 1`` of ``t``, for a group that spans block rows or
    components.  The first run loads a whole group straight into ``t``
    (reading whatever lies around the run: the planes have margins for
    it); later ones load into ``tmp`` and are blended in."""
    if l0 == 0:
        _load_blocks(plane, base, stride, t)
        return
    _load_blocks(plane, base - 8 * l0, stride, tmp)
    for k in range(64):
        dst = t[k * LANES:(k + 1) * LANES]
        src = tmp[k * LANES:(k + 1) * LANES]
        for lane in range(LANES):
            dst[lane] = src[lane] if l0 <= lane < l0 + n else dst[lane]


@njit(cache=True, nogil=True)
def _transform_row(yplane, cplane, margin, mcu_cols, my, y_bw, y_bh, div_y, div_c, fast, t,
                   tmp, q, masks):  # fmt: skip
    """Quantised coefficients of the MCU row's blocks into ``q`` (groups of
    LANES blocks, see :func:`lane_of`): the luma blocks, a block row at a
    time, then Cb and Cr.  The rows of the planes (as :func:`_mcu_row`
    leaves them) start ``margin`` values in."""
    pw = 16 * mcu_cols
    cw = 8 * mcu_cols
    nluma = 4 * mcu_cols
    chroma0 = (nluma + LANES - 1) // LANES * LANES
    total = chroma0 + (2 * mcu_cols + LANES - 1) // LANES * LANES
    for g in range(total // LANES):
        g0 = g * LANES
        tg = t[:GROUP]
        # A group may span block rows and components: load it a run of
        # neighbouring blocks at a time.  Lanes past the last block hold
        # whatever the first run read; they are never coded.
        lane = 0
        while lane < LANES:
            b = g0 + lane
            if b < nluma:
                yi, bx = divmod(b, 2 * mcu_cols)
                n = min(LANES - lane, 2 * mcu_cols - bx)
                _load_run(yplane, margin + 8 * yi * pw + 8 * bx, pw, tg, tmp, lane, n)
            elif chroma0 <= b < chroma0 + 2 * mcu_cols:
                c, mx = divmod(b - chroma0, mcu_cols)
                n = min(LANES - lane, mcu_cols - mx)
                _load_run(cplane, margin + 8 * c * cw + 8 * mx, cw, tg, tmp, lane, n)
            else:
                n = LANES - lane
            lane += n
        _transform_group(tg, q, g * GROUP, masks, g0, div_y if g0 < chroma0 else div_c, fast)
    # Blocks wholly outside the image carry only the DC of the block before
    # them (the one to the left, or for a missing bottom row the top-right
    # block of the MCU).
    for mx in range(mcu_cols):
        for yi in range(2):
            for xi in range(2):
                by = 2 * my + yi
                bx = 2 * mx + xi
                if by < y_bh and bx < y_bw:
                    continue
                b = yi * 2 * mcu_cols + bx
                src = b - 1 if by < y_bh else 2 * mx + 1
                o = b // LANES * GROUP + b % LANES
                dc = q[src // LANES * GROUP + src % LANES]
                for k in range(64):
                    q[o + k * LANES] = 0
                q[o] = dc
                masks[b] = 0


@njit(cache=True, nogil=True)
def lane_of(mcu_cols, mx, blk):
    """Where block ``blk`` (0-3 luma, 4 Cb, 5 Cr) of MCU ``mx`` lies in the
    transform's output: luma blocks in two block rows of ``2 * mcu_cols``,
    then, from the next whole group, Cb and Cr."""
    if blk < 4:
        return (blk >> 1) * 2 * mcu_cols + 2 * mx + (blk & 1)
    chroma0 = (4 * mcu_cols + LANES - 1) // LANES * LANES
    return chroma0 + (blk - 4) * mcu_cols + mx


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
    ``state`` carries (output position, bit accumulator, bits in it, last
    DC of Y, Cb, Cr) from one MCU row to the next.  Each symbol goes out
    with its value bits in one step."""
    pos = state[0]
    acc = state[1]
    nacc = state[2]
    for mx in range(mcu_cols):
        for blk in range(6):
            comp = 0 if blk < 4 else blk - 3
            t = 0 if comp == 0 else 4
            lane = lane_of(mcu_cols, mx, blk)
            o = lane // LANES * GROUP + lane % LANES
            # The DC difference, then the AC coefficients as (zero run, size)
            # symbols, then end of block unless coefficient 63 was the last.
            # One place in the loop writes every symbol: numba would not
            # keep the bit writer's state in registers across a helper.
            dc = np.int64(q[o])
            n, v = _magnitude(dc - state[3 + comp])
            state[3 + comp] = dc
            code = (huff[t, n] << n) | v
            length = huff[t + 1, n] + n
            last = 0
            m = masks[lane] & ~np.int64(1)
            while True:
                acc = (acc << length) | code  # fewer than 32 + 27 bits
                nacc += length
                if nacc >= 32:
                    nacc -= 32
                    word = (acc >> nacc) & 0xFFFFFFFF
                    acc &= (np.int64(1) << nacc) - 1
                    inv = word ^ 0xFFFFFFFF
                    if ((inv - 0x01010101) & ~inv & 0x80808080) == 0:  # no 0xFF byte
                        out[pos] = word >> 24
                        out[pos + 1] = (word >> 16) & 0xFF
                        out[pos + 2] = (word >> 8) & 0xFF
                        out[pos + 3] = word & 0xFF
                        pos += 4
                    else:
                        for j in range(4):
                            byte = (word >> (24 - 8 * j)) & 0xFF
                            out[pos] = byte
                            pos += 1
                            if byte == 0xFF:
                                out[pos] = 0
                                pos += 1
                if m == 0:
                    if last >= 63:
                        break
                    code = huff[t + 2, 0]  # end of block
                    length = huff[t + 3, 0]
                    last = 64
                    continue
                k = _cttz(m)
                run = k - last - 1
                if run > 15:  # sixteen zeros
                    code = huff[t + 2, 0xF0]
                    length = huff[t + 3, 0xF0]
                    last += 16
                    continue
                m &= m - 1
                n, v = _magnitude(np.int64(q[o + k * LANES]))
                code = (huff[t + 2, (run << 4) | n] << n) | v
                length = huff[t + 3, (run << 4) | n] + n
                last = k
    state[0] = pos
    state[1] = acc
    state[2] = nacc


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
def encode_scan(data, start, step, width, height, div_y, div_c, fast, huff):
    """Entropy-coded data (without markers) of a 4:2:0 scan of the
    x8r8g8b8 pixels whose image row ``y`` starts at pixel ``start + y *
    step`` of ``data``, the flat bytes of those little-endian words (a guest
    bitmap where it lies: taking the word view here, not in Python, keeps
    that numpy call off the per-frame path).

    ``div_y``/``div_c`` are the quantisation divisors in zig-zag order;
    ``huff`` rows: DC luma code, size, AC luma code, size, DC chroma code,
    size, AC chroma code, size (each indexed by symbol)."""
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
    q = np.empty(groups * GROUP, np.int32)
    masks = np.empty(groups * LANES, np.int64)
    state = np.zeros(6, np.int64)
    # Worst case per block: 27 + 63 * 26 bits, every byte stuffed.  Sized
    # for the whole image that is about 100 times what a video frame takes,
    # and past malloc's mmap threshold, where a block can be mapped, faulted
    # in and unmapped again on every call (756 KB allocated and freed: 26 us;
    # 16 KB: 0.5 us).  The buffer starts at two rows' worst case instead and
    # grows before a row that might not fit.
    row_worst = mcu_cols * 6 * 420
    out = np.empty(max(1 << 16, 2 * row_worst) + 16, np.uint8)
    for my in range(mcu_rows):
        _mcu_row(px, start, step, width, height, my, pw, ybuf, cbp, crp, cbuf)
        _transform_row(yplane, cplane, margin, mcu_cols, my, y_bw, y_bh, div_y, div_c, fast, t,
                       tmp, q, masks)
        if state[0] + row_worst + 16 > out.size:
            grown = np.empty(2 * out.size + row_worst, np.uint8)
            grown[:state[0]] = out[:state[0]]
            out = grown
        _entropy_row(q, masks, mcu_cols, huff, state, out)
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
    return out[:pos]
