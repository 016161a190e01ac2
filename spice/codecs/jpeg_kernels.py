"""numba kernels of the baseline JPEG encoder.

The arithmetic follows libjpeg's integer code paths so that the output
matches, byte for byte, what spice-server produces with libjpeg-turbo:
fixed-point RGB -> YCbCr (16 fractional bits, Cb/Cr rounded with
0.5 - epsilon), 2x2 chroma averaging with an alternating 1/2 rounding bias,
edge replication to whole blocks and MCUs, the accurate integer DCT (or the
AAN fast DCT that the video encoder asks for), reciprocal quantisation, and
Huffman coding with 0xFF byte stuffing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

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


@njit(cache=True, nogil=True)
def _convert_row(rgb, y, width, pw, out):
    """Y, Cb, Cr of image row ``y`` into out[0..2, :pw], the last pixel
    repeated past the right edge."""
    for x in range(width):
        r = np.int32(rgb[y, x, 0])
        g = np.int32(rgb[y, x, 1])
        b = np.int32(rgb[y, x, 2])
        out[0, x] = (_FIX_0_29900 * r + _FIX_0_58700 * g + _FIX_0_11400 * b + _ONE_HALF) >> 16
        out[1, x] = (-_FIX_0_16874 * r - _FIX_0_33126 * g + _FIX_0_50000 * b
                     + _CBCR_OFFSET + _ONE_HALF - 1) >> 16
        out[2, x] = (_FIX_0_50000 * r - _FIX_0_41869 * g - _FIX_0_08131 * b
                     + _CBCR_OFFSET + _ONE_HALF - 1) >> 16
    for c in range(3):
        for x in range(width, pw):
            out[c, x] = out[c, width - 1]


@njit(cache=True, nogil=True)
def color_planes(rgb, width, height):
    """YCbCr planes padded for 4:2:0 MCUs of 16x16 pixels.

    Returns (luma, chroma): luma is (16*mcu_rows, 16*mcu_cols), chroma is
    (2, 8*mcu_rows, 8*mcu_cols).  Pixels past the right and bottom edges
    repeat the last column / row, before and after subsampling, as libjpeg
    pads them."""
    mcu_cols = (width + 15) // 16
    mcu_rows = (height + 15) // 16
    pw = mcu_cols * 16
    cw = mcu_cols * 8
    luma = np.empty((mcu_rows * 16, pw), np.int32)
    chroma = np.empty((2, mcu_rows * 8, cw), np.int32)
    pair = np.empty((2, 3, pw), np.int32)
    half = (height + 1) // 2
    for y2 in range(half):
        for k in range(2):
            # An odd last row is paired with itself.
            _convert_row(rgb, min(2 * y2 + k, height - 1), width, pw, pair[k])
            luma[2 * y2 + k] = pair[k, 0]
        for c in range(2):
            bias = 1
            for x in range(cw):
                chroma[c, y2, x] = (pair[0, c + 1, 2 * x] + pair[0, c + 1, 2 * x + 1]
                                    + pair[1, c + 1, 2 * x] + pair[1, c + 1, 2 * x + 1]
                                    + bias) >> 2
                bias ^= 3
    for y in range(2 * half, mcu_rows * 16):
        luma[y] = luma[2 * half - 1]
    for c in range(2):
        for y in range(half, mcu_rows * 8):
            chroma[c, y] = chroma[c, half - 1]
    return luma, chroma


@njit(cache=True, nogil=True)
def _descale(x, n):
    return (x + (1 << (n - 1))) >> n


@njit(cache=True, nogil=True)
def fdct_islow(ws):
    """libjpeg's accurate integer DCT, in place; output scaled by 8."""
    for p in range(2):
        step = 8 if p == 0 else 1  # rows first, then columns
        lane = 1 if p == 0 else 8
        for k in range(8):
            o = k * step
            d0 = ws[o]
            d1 = ws[o + lane]
            d2 = ws[o + 2 * lane]
            d3 = ws[o + 3 * lane]
            d4 = ws[o + 4 * lane]
            d5 = ws[o + 5 * lane]
            d6 = ws[o + 6 * lane]
            d7 = ws[o + 7 * lane]
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
            # Pass 1 keeps 2 extra fraction bits, pass 2 removes them.
            sh = 11 if p == 0 else 15
            if p == 0:
                ws[o] = (tmp10 + tmp11) << 2
                ws[o + 4 * lane] = (tmp10 - tmp11) << 2
            else:
                ws[o] = _descale(tmp10 + tmp11, 2)
                ws[o + 4 * lane] = _descale(tmp10 - tmp11, 2)
            z1 = (tmp12 + tmp13) * 4433
            ws[o + 2 * lane] = _descale(z1 + tmp13 * 6270, sh)
            ws[o + 6 * lane] = _descale(z1 - tmp12 * 15137, sh)
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
            ws[o + 7 * lane] = _descale(tmp4 + z1 + z3, sh)
            ws[o + 5 * lane] = _descale(tmp5 + z2 + z4, sh)
            ws[o + 3 * lane] = _descale(tmp6 + z2 + z3, sh)
            ws[o + lane] = _descale(tmp7 + z1 + z4, sh)


@njit(cache=True, nogil=True)
def _mul8(x, c):
    return (x * c) >> 8


@njit(cache=True, nogil=True)
def fdct_ifast(ws):
    """The AAN fast integer DCT (8-bit constants, truncating), in place."""
    for p in range(2):
        step = 8 if p == 0 else 1
        lane = 1 if p == 0 else 8
        for k in range(8):
            o = k * step
            d0 = ws[o]
            d1 = ws[o + lane]
            d2 = ws[o + 2 * lane]
            d3 = ws[o + 3 * lane]
            d4 = ws[o + 4 * lane]
            d5 = ws[o + 5 * lane]
            d6 = ws[o + 6 * lane]
            d7 = ws[o + 7 * lane]
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
            ws[o] = tmp10 + tmp11
            ws[o + 4 * lane] = tmp10 - tmp11
            z1 = _mul8(tmp12 + tmp13, 181)
            ws[o + 2 * lane] = tmp13 + z1
            ws[o + 6 * lane] = tmp13 - z1
            tmp10 = tmp4 + tmp5
            tmp11 = tmp5 + tmp6
            tmp12 = tmp6 + tmp7
            z5 = _mul8(tmp10 - tmp12, 98)
            z2 = _mul8(tmp10, 139) + z5
            z4 = _mul8(tmp12, 334) + z5
            z3 = _mul8(tmp11, 181)
            z11 = tmp7 + z3
            z13 = tmp7 - z3
            ws[o + 5 * lane] = z13 + z2
            ws[o + 3 * lane] = z13 - z2
            ws[o + lane] = z11 + z4
            ws[o + 7 * lane] = z11 - z4


@njit(cache=True, nogil=True)
def _block(plane, by, bx, div, fast, ws, coef):
    """Level-shift, transform and quantise one 8x8 block into ``coef``."""
    for r in range(8):
        for c in range(8):
            ws[r * 8 + c] = plane[by * 8 + r, bx * 8 + c] - 128
    if fast:
        fdct_ifast(ws)
    else:
        fdct_islow(ws)
    for i in range(64):
        x = ws[i]
        a = -x if x < 0 else x
        q = ((a + div[1, i]) * div[0, i]) >> div[2, i]
        coef[i] = -q if x < 0 else q


@njit(cache=True, nogil=True)
def _emit(out, pos, acc, nbits, bits, length):
    """Append ``length`` (<= 27) bits to ``acc`` (holding ``nbits`` < 8) and
    write out whole bytes, each 0xFF followed by a stuffed zero."""
    acc = (acc << length) | bits
    nbits += length
    while nbits >= 8:
        nbits -= 8
        byte = (acc >> nbits) & 0xFF
        out[pos] = byte
        pos += 1
        if byte == 0xFF:
            out[pos] = 0
            pos += 1
    return pos, acc & ((1 << nbits) - 1), nbits


@njit(cache=True, nogil=True)
def _magnitude(v):
    """(bit count of |v|, the bits sent for v): negatives go as v - 1 in
    that many bits (ones' complement)."""
    a = -v if v < 0 else v
    n = 0
    while a:
        n += 1
        a >>= 1
    if v < 0:
        v -= 1
    return n, v & ((1 << n) - 1)


@njit(cache=True, nogil=True)
def _huffman_block(coef, last_dc, dc_code, dc_size, ac_code, ac_size, zigzag, out, pos, acc,
                   nbits):
    """Append one block's codes; returns (pos, acc, nbits)."""
    n, bits = _magnitude(coef[0] - last_dc)
    pos, acc, nbits = _emit(out, pos, acc, nbits, (dc_code[n] << n) | bits, dc_size[n] + n)
    run = 0
    for k in range(1, 64):
        v = coef[zigzag[k]]
        if v == 0:
            run += 1
            continue
        while run > 15:  # sixteen zeros
            pos, acc, nbits = _emit(out, pos, acc, nbits, ac_code[0xF0], ac_size[0xF0])
            run -= 16
        n, bits = _magnitude(v)
        sym = (run << 4) | n
        pos, acc, nbits = _emit(out, pos, acc, nbits, (ac_code[sym] << n) | bits,
                                ac_size[sym] + n)
        run = 0
    if run > 0:  # end of block
        pos, acc, nbits = _emit(out, pos, acc, nbits, ac_code[0], ac_size[0])
    return pos, acc, nbits


@njit(cache=True, nogil=True)
def jpeg_scan_kernel(luma, chroma, width, height, div_y, div_c, fast, huff, zigzag):
    """Entropy-coded data of a 4:2:0 scan (without markers).

    ``huff`` rows: DC luma code, size, AC luma code, size, DC chroma code,
    size, AC chroma code, size (each indexed by symbol)."""
    mcu_cols = (width + 15) // 16
    mcu_rows = (height + 15) // 16
    y_bw = (width + 7) // 8
    y_bh = (height + 7) // 8
    out = np.empty(mcu_cols * mcu_rows * 6 * 64 + 4096, np.uint8)
    pos = 0
    acc = 0
    nbits = 0
    ws = np.empty(64, np.int64)
    coef = np.empty((6, 64), np.int64)
    last_dc = np.zeros(3, np.int64)
    for my in range(mcu_rows):
        for mx in range(mcu_cols):
            # Worst case per block: 27 + 63 * 26 bits, every byte stuffed.
            if pos + 6 * 420 + 2 > out.shape[0]:
                bigger = np.empty(out.shape[0] * 2, np.uint8)
                bigger[:pos] = out[:pos]
                out = bigger
            for yi in range(2):
                for xi in range(2):
                    blk = yi * 2 + xi
                    by = 2 * my + yi
                    bx = 2 * mx + xi
                    if by < y_bh and bx < y_bw:
                        _block(luma, by, bx, div_y, fast, ws, coef[blk])
                    else:
                        # Blocks wholly outside the image carry only the DC
                        # of the block before them (the one to the left, or
                        # for a missing bottom row the top-right block).
                        coef[blk, :] = 0
                        src = blk - 1 if by < y_bh else 1
                        coef[blk, 0] = coef[src, 0]
            _block(chroma[0], my, mx, div_c, fast, ws, coef[4])
            _block(chroma[1], my, mx, div_c, fast, ws, coef[5])
            for blk in range(6):
                comp = 0 if blk < 4 else blk - 3
                t = 0 if comp == 0 else 4
                pos, acc, nbits = _huffman_block(coef[blk], last_dc[comp], huff[t], huff[t + 1],
                                                 huff[t + 2], huff[t + 3], zigzag, out, pos, acc,
                                                 nbits)
                last_dc[comp] = coef[blk, 0]
    if nbits > 0:
        # Pad the last byte with one bits.
        byte = ((acc << (8 - nbits)) | ((1 << (8 - nbits)) - 1)) & 0xFF
        out[pos] = byte
        pos += 1
        if byte == 0xFF:
            out[pos] = 0
            pos += 1
    return out[:pos]
