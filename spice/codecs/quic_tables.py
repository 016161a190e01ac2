"""Constant tables of the QUIC image codec.

QUIC is SPICE's lossless photographic codec (a descendant of SFALIC): each
colour channel is predicted from its left and upper neighbours, the
prediction error is folded to a non-negative number and written with an
adaptive Golomb-Rice code whose parameter each context "bucket" learns as
it goes; runs of repeated pixels are written with an adaptive run-length
(MELCODE) coder.  Encoder and decoder must evolve the same model in the
same order, so every number here is part of the wire format: changing one
makes streams that SPICE clients decode into garbage.

The tables are computed once at import and handed to the numba kernels as
arrays, one set per bits-per-channel "family" (5 for RGB555, 8 otherwise).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

QUIC_MAGIC = 0x43495551  # "QUIC" read as a little-endian u32
QUIC_VERSION = 0  # major 0, minor 0

# QuicImageType, the third word of a stream.
QUIC_IMAGE_TYPE_INVALID = 0
QUIC_IMAGE_TYPE_GRAY = 1
QUIC_IMAGE_TYPE_RGB16 = 2
QUIC_IMAGE_TYPE_RGB24 = 3
QUIC_IMAGE_TYPE_RGB32 = 4
QUIC_IMAGE_TYPE_RGBA = 5

# Decoders refuse more pixels than this (the reference decoder's guard
# against integer overflow in buffer sizes).
QUIC_MAX_PIXELS = 512 * 1024 * 1024 - 1

# Longest codeword the Golomb family may produce; longer values escape to a
# fixed-length code.
CODEWORD_LIMIT = 26

# Model adaptation: a bucket's statistics are refreshed only every
# (random & waitmask) pixels; the wait mask index grows from 0 to WMI_MAX,
# one step every WMI_NEXT coded pixels, so the model learns fast at first
# and then settles.
WMI_MAX = 6
WMI_NEXT = 2048

# Counter-halving thresholds per wait mask index (model evolution rate 3).
WM_TRIGGER = np.array([110, 550, 900, 800, 550, 400, 350, 250, 140, 160, 140], np.int64)

# Run-length coder: the expected run length is 2**MELC_ORDER_LOG2[state].
MELC_ORDER_LOG2 = np.array(
    [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
     4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    np.int64,
)  # fmt: skip

# Pseudo-random wait lengths; both sides walk this table from index 0 on
# every channel state, so the sequence is part of the format.
TABRAND = np.array(
    [
        0x02C57542, 0x35427717, 0x2F5A2153, 0x9244F155, 0x7BD26D07, 0x354C6052, 0x57329B28,
        0x2993868E, 0x6CD8808C, 0x147B46E0, 0x99DB66AF, 0xE32B4CAC, 0x1B671264, 0x9D433486,
        0x62A4C192, 0x06089A4B, 0x9E3DCE44, 0xDAABEE13, 0x222425EA, 0xA46F331D, 0xCD589250,
        0x8BB81D7F, 0xC8B736B9, 0x35948D33, 0xD7AC7FD0, 0x5FBE2803, 0x2CFBC105, 0x013DBC4E,
        0x7A37820F, 0x39F88E9E, 0xEDD58794, 0xC5076689, 0xFCADA5A4, 0x64C2F46D, 0xB3BA3243,
        0x8974B4F9, 0x5A05AEBD, 0x20AFCD00, 0x39E2B008, 0x88A18A45, 0x600BDE29, 0xF3971ACE,
        0xF37B0A6B, 0x7041495B, 0x70B707AB, 0x06BEFFBB, 0x4206051F, 0xE13C4EE3, 0xC1A78327,
        0x91AA067C, 0x8295F72A, 0x732917A6, 0x1D871B4D, 0x4048F136, 0xF1840E7E, 0x6A6048C1,
        0x696CB71A, 0x7FF501C3, 0x0FC6310B, 0x57E0F83D, 0x8CC26E74, 0x11A525A2, 0x946934C7,
        0x7CD888F0, 0x8F9D8604, 0x4F86E73B, 0x04520316, 0xDEEEA20C, 0xF1DEF496, 0x67687288,
        0xF540C5B2, 0x22401484, 0x3478658A, 0xC2385746, 0x01979C2C, 0x5DAD73C8, 0x0321F58B,
        0xF0FEDBEE, 0x92826DDF, 0x284BEC73, 0x5B1A1975, 0x03DF1E11, 0x20963E01, 0xA17CF12B,
        0x740D776E, 0xA7A6BF3C, 0x01B5CCE4, 0x1118AA76, 0xFC6FAC0A, 0xCE927E9B, 0x00BF2567,
        0x806F216C, 0xBCA69056, 0x795BD3E9, 0xC9DC4557, 0x8929B6C2, 0x789D52EC, 0x3F3FBF40,
        0xB9197368, 0xA38C15B5, 0xC3B44FA8, 0xCA8333B0, 0xB7E8D590, 0xBE807FEB, 0xBF5F8360,
        0xD99E2F5C, 0x372928E1, 0x7C757C4C, 0x0DB5B154, 0xC01EDE02, 0x1FC86E78, 0x1F3985BE,
        0xB4805C77, 0x00C880FA, 0x974C1B12, 0x35AB0214, 0xB2DC840D, 0x5B00AE37, 0xD313B026,
        0xB260969D, 0x7F4C8879, 0x1734C4D3, 0x49068631, 0xB9F6A021, 0x6B863E6F, 0xCEE5DEBF,
        0x29F8C9FB, 0x53DD6880, 0x72B61223, 0x1F67A9FD, 0x0A0F6993, 0x13E59119, 0x11CCA12E,
        0xFE6B6766, 0x16B6EFFC, 0x97918FC4, 0xC2B8A563, 0x94F2F741, 0x0BFA8C9A, 0xD1537AE8,
        0xC1DA349C, 0x873C60CA, 0x95005B85, 0x9B5C080E, 0xBC8ABBD9, 0xE1EAB1D2, 0x6DAC9070,
        0x4EA9EBF1, 0xE0CF30D4, 0x1EF5BD7B, 0xD161043E, 0x5D2FA2E2, 0xFF5D3CAE, 0x86ED9F87,
        0x2AA1DAA1, 0xBD731A34, 0x9E8F4B22, 0xB1C2C67A, 0xC21758C9, 0xA182215D, 0xCCB01948,
        0x8D168DF7, 0x04238CFE, 0x368C3DBC, 0x0AEADCA5, 0xBAD21C24, 0x0A71FEE5, 0x9FC5D872,
        0x54C152C6, 0xFC329483, 0x6783384A, 0xEDDB3E1C, 0x65F90E30, 0x884AD098, 0xCE81675A,
        0x4B372F7D, 0x68BF9A39, 0x43445F1E, 0x40F8D8CB, 0x90D5ACB6, 0x4CD07282, 0x349EEB06,
        0x0C9D5332, 0x520B24EF, 0x80020447, 0x67976491, 0x2F931CA3, 0xFE9B0535, 0xFCD30220,
        0x61A9E6CC, 0xA487D8D7, 0x3F7C5DD1, 0x7D0127C5, 0x48F51D15, 0x60DEA871, 0xC9A91CB7,
        0x58B53BB3, 0x9D5E0B2D, 0x624A78B4, 0x30DBEE1B, 0x9BDF22E7, 0x1DF5C299, 0x2D5643A7,
        0xF4DD35FF, 0x03CA8FD6, 0x53B47ED8, 0x6F2C19AA, 0xFEB0C1F4, 0x49E54438, 0x2F2577E6,
        0xBF876969, 0x72440EA9, 0xFA0BAFB8, 0x74F5B3A0, 0x7DD357CD, 0x89CE1358, 0x6EF2CDDA,
        0x1E7767F3, 0xA6BE9FDB, 0x4F5F88F8, 0xBA994A3A, 0x08CA6B65, 0xE0893818, 0x9E00A16A,
        0xF42BFC8F, 0x9972EEDC, 0x749C8B51, 0x32C05F5E, 0xD706805F, 0x6BFBB7CF, 0xD9210A10,
        0x31A1DB97, 0x923A9559, 0x37A7A1F6, 0x059F8861, 0xCA493E62, 0x65157E81, 0x8F6467DD,
        0xAB85FF9F, 0x9331AFF2, 0x8616B9F5, 0xEDBD5695, 0xEE7E29B1, 0x313AC44F, 0xB903112F,
        0x432EF649, 0xDC0A36C0, 0x61CF2BBA, 0x81474925, 0xA8B6C7AD, 0xEE5931DE, 0xB2F8158D,
        0x59FB7409, 0x2E3DFAED, 0x9AF25A3F, 0xE1FED4D5,
    ],
    np.int64,
)  # fmt: skip


class Family(NamedTuple):
    """Code tables for one bits-per-channel value (all int64 arrays)."""

    bpc: int
    # Per code number l (0..bpc-1): how many values get a plain Golomb-Rice
    # codeword, the length of the escape codeword, its suffix length, and the
    # largest 32-bit window value that still starts with the escape prefix.
    n_gr: np.ndarray
    escape_len: np.ndarray
    escape_suffix_len: np.ndarray
    escape_prefix_max: np.ndarray
    # [value, l] -> codeword and its length in bits.
    code: np.ndarray
    code_len: np.ndarray
    # The two packed in one lookup: code << 6 | length.
    packed: np.ndarray
    # Fold a prediction error (mod 2**bpc) to 0, 1, 2, ... by magnitude
    # (0, -1, +1, -2, ...), and back.
    fold: np.ndarray
    unfold: np.ndarray
    # Context value (previous folded error) -> bucket number; buckets cover
    # 1, 2, 4, 8, ... values, the last one absorbing the remainder.
    bucket_of: np.ndarray
    n_buckets: int


def _ceil_log2(v: int) -> int:
    return 0 if v <= 1 else (v - 1).bit_length()


def _family(bpc: int) -> Family:
    levels = 1 << bpc
    n_gr = np.zeros(8, np.int64)
    escape_len = np.zeros(8, np.int64)
    escape_suffix_len = np.zeros(8, np.int64)
    escape_prefix_max = np.zeros(8, np.int64)
    code = np.zeros((256, 8), np.int64)
    code_len = np.zeros((256, 8), np.int64)
    for l in range(bpc):
        prefix = min(CODEWORD_LIMIT - bpc, (1 << (bpc - l)) - 1)
        n_gr[l] = prefix << l
        escape_suffix_len[l] = _ceil_log2(levels - (prefix << l))
        escape_len[l] = prefix + escape_suffix_len[l]
        escape_prefix_max[l] = (1 << (32 - prefix)) - 1
        for n in range(256):
            if n < n_gr[l]:
                # (n >> l) zeros, a one, then the low l bits of n.
                code[n, l] = (1 << l) | (n & ((1 << l) - 1))
                code_len[n, l] = (n >> l) + l + 1
            else:
                # `prefix` zeros then the offset past the Golomb range.
                code[n, l] = n - n_gr[l]
                code_len[n, l] = escape_len[l]
    fold = np.zeros(256, np.int64)
    unfold = np.zeros(256, np.int64)
    mask = levels - 1
    for s in range(levels):
        fold[s] = s << 1 if s <= mask >> 1 else ((mask - s) << 1) + 1
        unfold[s] = mask - (s >> 1) if s & 1 else s >> 1
    bucket_of = np.zeros(256, np.int64)
    start, size, n = 0, 1, 0
    while True:
        end = start + size - 1
        if end + size >= levels:
            # Too little left for another bucket: this one takes the rest.
            end = levels - 1
        bucket_of[start : end + 1] = n
        n += 1
        if end >= levels - 1:
            break
        start, size = end + 1, size * 2
    return Family(bpc, n_gr, escape_len, escape_suffix_len, escape_prefix_max,
                  code, code_len, (code << 6) | code_len, fold, unfold, bucket_of, n)  # fmt: skip


FAMILY_5BPC = _family(5)
FAMILY_8BPC = _family(8)
