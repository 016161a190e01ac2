"""numba kernels of the JPEG encoder: the forward DCT and the quantisation.

The arithmetic is libjpeg's: the accurate integer DCT (``jfdctint``) or,
for video frames, the AAN fast DCT (``jfdctfst``), then reciprocal
quantisation with the divisors of :func:`spice.codecs.jpeg_tables.divisors`.
:func:`_transform_row` takes the colour planes of one MCU row, as
:mod:`spice.codecs.jpeg_kernels` lays them out, and leaves the quantised
coefficients, in zig-zag order, for its Huffman coder, with a bit mask of
the non-zero ones per block.

It runs on 16 blocks at once, coefficient-major (:data:`LANES`), so that
each butterfly step is one vector operation.  The accurate DCT is numba
loops over 64-bit values, followed by :func:`_quantise`; the fast one, the
video path, is one routine of LLVM vector operations on 16-bit lanes
(:func:`_fast_group`), the DCT and the quantisation together.  Both
quantisers build the masks and leave 16-bit coefficients.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from spice.codecs.jpeg_tables import ZIGZAG

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


# The natural-order position of each zig-zag coefficient, as plain ints for
# the intrinsics' code generators.
_ZIG = tuple(int(z) for z in ZIGZAG)

def _contiguous(a, dtype, ndim) -> bool:
    return isinstance(a, types.Array) and (a.dtype, a.ndim, a.layout) == (dtype, ndim, "C")


def _group_arrays_typed(t, q, div, masks) -> bool:
    """Whether the arguments of a group intrinsic have the types its code
    is written for: ``t`` int32, ``q`` int16, ``div`` 2-D int32, ``masks``
    int64, all C-contiguous."""
    return (_contiguous(t, types.int32, 1) and _contiguous(q, types.int16, 1)
            and _contiguous(div, types.int32, 2) and _contiguous(masks, types.int64, 1))


def _group_array_data(context, builder, signature, args):
    """The data pointers of a group intrinsic's ``t``, ``q``, ``div`` and
    ``masks`` arguments (positions 0, 1, 3 and 4)."""
    return tuple(context.make_array(signature.args[i])(context, builder, args[i]).data
                 for i in (0, 1, 3, 4))


@intrinsic
def _quantise(typingctx, t, q, qoff, div, masks, moff):
    """Quantise the group of accurate DCT outputs ``t`` (natural order) into
    ``q[qoff:qoff + GROUP]`` (16-bit) in zig-zag order, libjpeg-turbo's way:
    ``((|x| + corr) * recip) >> shift`` in 32-bit arithmetic, sign restored,
    with ``div`` rows (recip, corr, shift) in zig-zag order.  Sets
    ``masks[moff + l]`` to the zig-zag positions of block ``l``'s non-zero
    coefficients, as bits.

    Written as LLVM vector operations, one 16-lane vector per coefficient,
    because numba's loops do not get there: with the lanes as the inner
    loop the compiler vectorises across coefficients instead, with gathers
    and scatters, and the bit masks turn into a chain of stores and loads.
    Here they stay in registers as a vector of 64-bit masks."""
    if not _group_arrays_typed(t, q, div, masks):
        return None

    def codegen(context, builder, signature, args):
        qoff_, moff_ = args[2], args[5]
        tdata, qdata, ddata, mdata = _group_array_data(context, builder, signature, args)
        c32 = ir.IntType(32)
        c64 = ir.IntType(64)
        v32 = ir.VectorType(c32, LANES)
        v64 = ir.VectorType(c64, LANES)
        v16 = ir.VectorType(ir.IntType(16), LANES)

        def vector(data, offset, vty):
            return builder.bitcast(builder.gep(data, [offset]), vty.as_pointer())

        def broadcast(row, k):
            x = builder.load(builder.gep(ddata, [ir.Constant(c64, 64 * row + k)]))
            v = builder.insert_element(ir.Constant(v32, ir.Undefined), x, ir.Constant(c32, 0))
            return builder.shuffle_vector(v, ir.Constant(v32, ir.Undefined),
                                          ir.Constant(v32, [0] * LANES))

        mask = ir.Constant(v64, [0] * LANES)
        for k in range(64):
            x = builder.load(vector(tdata, ir.Constant(c64, _ZIG[k] * LANES), v32), align=4)
            sign = builder.ashr(x, ir.Constant(v32, [31] * LANES))
            a = builder.sub(builder.xor(x, sign), sign)
            v = builder.ashr(builder.mul(builder.add(a, broadcast(1, k)), broadcast(0, k)),
                             broadcast(2, k))
            builder.store(builder.trunc(builder.sub(builder.xor(v, sign), sign), v16),
                          vector(qdata, builder.add(qoff_, ir.Constant(c64, k * LANES)), v16),
                          align=2)
            # bit 63 as a signed constant: llvmlite takes the value modulo 2**64
            bit = ir.Constant(v64, [(1 << k) - (1 << 64 if k == 63 else 0)] * LANES)
            nonzero = builder.icmp_signed("!=", v, ir.Constant(v32, [0] * LANES))
            mask = builder.select(nonzero, builder.or_(mask, bit), mask)
        builder.store(mask, vector(mdata, moff_, v64), align=8)
        return context.get_dummy_value()

    return types.none(t, q, qoff, div, masks, moff), codegen


def fast_divisors(div: np.ndarray) -> np.ndarray:
    """The divisors of :func:`spice.codecs.jpeg_tables.divisors` (rows
    recip, corr, shift) as :func:`_fast_group` uses them: 16-bit values
    (in 32-bit integers, as the accurate DCT's divisors), the shift less the
    16 bits that the high half of the product drops.  A divisor
    of 1, (1, 0, 0), becomes (65535, 1, 0): ``(a + 1) * 65535 >> 16`` is
    ``a`` for every ``a`` below 65535."""
    out = np.array(div, np.int64)
    one = out[2] < 16
    out[:, one] = np.array([[65535], [1], [0]])
    out[2, ~one] -= 16
    return out.astype(np.int32)


@intrinsic
def _fast_group(typingctx, t, q, qoff, div, masks, moff):
    """The fast DCT (libjpeg's ``jfdctfst``) and the quantisation of the
    group ``t`` (as :func:`_load_blocks` leaves it) into ``q[qoff:qoff +
    GROUP]`` and
    ``masks[moff:moff + LANES]``, as :func:`_quantise` does; ``div`` is
    from :func:`fast_divisors`.

    libjpeg-turbo computes this DCT in 16-bit lanes, where its values fit,
    and so does this: twice the lanes of a vector, and its multiplication
    ``(x * c) >> 8`` is one high-half multiply, ``(4x * 64c) >> 16``.  The
    quantisation's ``((|x| + corr) * recip) >> shift`` is likewise the high
    half of a 16-bit product shifted by the rest.  All 64 coefficients
    stay in registers (or the compiler's spill slots) from the load to the
    quantised store, instead of going through ``t`` after every pass."""
    if not _group_arrays_typed(t, q, div, masks):
        return None

    def codegen(context, builder, signature, args):
        qoff_, moff_ = args[2], args[5]
        tdata, qdata, ddata, mdata = _group_array_data(context, builder, signature, args)
        i16 = ir.IntType(16)
        i32 = ir.IntType(32)
        i64 = ir.IntType(64)
        v16 = ir.VectorType(i16, LANES)
        v32 = ir.VectorType(i32, LANES)
        v64 = ir.VectorType(i64, LANES)
        add, sub = builder.add, builder.sub

        def const(vty, c):
            return ir.Constant(vty, [c] * LANES)

        def vector(data, offset, vty):
            return builder.bitcast(builder.gep(data, [offset]), vty.as_pointer())

        def broadcast(row, k):
            x = builder.load(builder.gep(ddata, [ir.Constant(i64, 64 * row + k)]))
            x = builder.trunc(x, i16)
            v = builder.insert_element(ir.Constant(v16, ir.Undefined), x, ir.Constant(i32, 0))
            return builder.shuffle_vector(v, ir.Constant(v16, ir.Undefined),
                                          ir.Constant(v32, [0] * LANES))

        def high(a, b, extend):  # the high 16 bits of the 32-bit products
            wide = builder.mul(extend(a, v32), extend(b, v32))
            return builder.trunc(builder.lshr(wide, const(v32, 16)), v16)

        def mul8(x, c):
            return high(builder.shl(x, const(v16, 2)), const(v16, c << 6), builder.sext)

        def ifast(d):
            """jfdctfst's butterflies on eight vectors (truncating)."""
            tmp0, tmp7 = add(d[0], d[7]), sub(d[0], d[7])
            tmp1, tmp6 = add(d[1], d[6]), sub(d[1], d[6])
            tmp2, tmp5 = add(d[2], d[5]), sub(d[2], d[5])
            tmp3, tmp4 = add(d[3], d[4]), sub(d[3], d[4])
            tmp10, tmp13 = add(tmp0, tmp3), sub(tmp0, tmp3)
            tmp11, tmp12 = add(tmp1, tmp2), sub(tmp1, tmp2)
            out = [None] * 8
            out[0], out[4] = add(tmp10, tmp11), sub(tmp10, tmp11)
            z1 = mul8(add(tmp12, tmp13), 181)
            out[2], out[6] = add(tmp13, z1), sub(tmp13, z1)
            tmp10, tmp11, tmp12 = add(tmp4, tmp5), add(tmp5, tmp6), add(tmp6, tmp7)
            z5 = mul8(sub(tmp10, tmp12), 98)
            z2 = add(mul8(tmp10, 139), z5)
            z4 = add(mul8(tmp12, 334), z5)
            z3 = mul8(tmp11, 181)
            z11, z13 = add(tmp7, z3), sub(tmp7, z3)
            out[5], out[3] = add(z13, z2), sub(z13, z2)
            out[1], out[7] = add(z11, z4), sub(z11, z4)
            return out

        c = [builder.trunc(builder.load(vector(tdata, ir.Constant(i64, k * LANES), v32),
                                        align=4), v16)
             for k in range(64)]
        for r in range(8):
            c[8 * r:8 * r + 8] = ifast(c[8 * r:8 * r + 8])
        for col in range(8):
            c[col::8] = ifast(c[col::8])
        # The masks in two 32-bit halves: one vector operation per
        # coefficient instead of two for 64-bit lanes.
        halves = [const(v32, 0), const(v32, 0)]
        for k in range(64):
            x = c[_ZIG[k]]
            sign = builder.ashr(x, const(v16, 15))
            a = sub(builder.xor(x, sign), sign)
            v = builder.lshr(high(add(a, broadcast(1, k)), broadcast(0, k), builder.zext),
                             broadcast(2, k))
            builder.store(sub(builder.xor(v, sign), sign),
                          vector(qdata, add(qoff_, ir.Constant(i64, k * LANES)), v16),
                          align=2)
            bit = ir.Constant(v32, [(1 << (k & 31)) - (1 << 32 if k & 31 == 31 else 0)] * LANES)
            nonzero = builder.icmp_unsigned("!=", v, const(v16, 0))
            h = halves[k >> 5]
            halves[k >> 5] = builder.select(nonzero, builder.or_(h, bit), h)
        mask = builder.or_(builder.shl(builder.zext(halves[1], v64), const(v64, 32)),
                           builder.zext(halves[0], v64))
        builder.store(mask, vector(mdata, moff_, v64), align=8)
        return context.get_dummy_value()

    return types.none(t, q, qoff, div, masks, moff), codegen


@njit(cache=True, nogil=True)
def _transform_group(t, q, qoff, masks, m0, div, fast):
    """DCT and quantise the LANES level-shifted blocks in ``t`` (one
    group), rows first, then columns, into ``q[qoff:]`` and ``masks[m0:]``
    (see :func:`_quantise`)."""
    if fast:
        _fast_group(t, q, qoff, div, masks, m0)
        return
    for r in range(8):
        _islow_pass(t, 8 * r * LANES, LANES, True)
    for c in range(8):
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
