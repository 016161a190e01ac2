"""An 8x16 code page 437 font for VGA text mode, generated at run time.

The letters come from the TrueType font that ships with pygame, rendered
anti-aliased at six times the cell size with ``pygame.freetype`` and
reduced to one bit per pixel (coverage above a threshold); glyphs wider
than the cell are squeezed to seven pixels so neighbours keep a gap.  The
box-drawing, block and shade characters (0xB0-0xDF) are drawn from a
table of line weights instead, because they must join seamlessly across
cells.  Characters the TrueType font lacks are blank.

The table is built once, on first use (a few tens of milliseconds).
"""

from __future__ import annotations

import os
import threading

import numpy as np

GLYPH_WIDTH = 8
GLYPH_HEIGHT = 16
_SCALE = 6  # render at 6x and reduce
_FONT_SIZE = 80
_BASELINE_ROW = 12
_THRESHOLD = 0.45

# CP437 graphics in the control-code range (0x00-0x1F) and at 0x7F.
_LOW_GLYPHS = (" \u263a\u263b\u2665\u2666\u2663\u2660\u2022\u25d8\u25cb\u25d9\u2642\u2640"
               "\u266a\u266b\u263c\u25ba\u25c4\u2195\u203c\u00b6\u00a7\u25ac\u21a8\u2191"
               "\u2193\u2192\u2190\u221f\u2194\u25b2\u25bc")

# Box drawing 0xB3-0xDA: line weight (0 none, 1 single, 2 double) towards
# up, down, left, right.
_BOX = {
    0xB3: (1, 1, 0, 0), 0xB4: (1, 1, 1, 0), 0xB5: (1, 1, 2, 0), 0xB6: (2, 2, 1, 0),
    0xB7: (0, 2, 1, 0), 0xB8: (0, 1, 2, 0), 0xB9: (2, 2, 2, 0), 0xBA: (2, 2, 0, 0),
    0xBB: (0, 2, 2, 0), 0xBC: (2, 0, 2, 0), 0xBD: (2, 0, 1, 0), 0xBE: (1, 0, 2, 0),
    0xBF: (0, 1, 1, 0), 0xC0: (1, 0, 0, 1), 0xC1: (1, 0, 1, 1), 0xC2: (0, 1, 1, 1),
    0xC3: (1, 1, 0, 1), 0xC4: (0, 0, 1, 1), 0xC5: (1, 1, 1, 1), 0xC6: (1, 1, 0, 2),
    0xC7: (2, 2, 0, 1), 0xC8: (2, 0, 0, 2), 0xC9: (0, 2, 0, 2), 0xCA: (2, 0, 2, 2),
    0xCB: (0, 2, 2, 2), 0xCC: (2, 2, 0, 2), 0xCD: (0, 0, 2, 2), 0xCE: (2, 2, 2, 2),
    0xCF: (1, 0, 2, 2), 0xD0: (2, 0, 1, 1), 0xD1: (0, 1, 2, 2), 0xD2: (0, 2, 1, 1),
    0xD3: (2, 0, 0, 1), 0xD4: (1, 0, 0, 2), 0xD5: (0, 1, 0, 2), 0xD6: (0, 2, 0, 1),
    0xD7: (2, 2, 1, 1), 0xD8: (1, 1, 2, 2), 0xD9: (1, 0, 1, 0), 0xDA: (0, 1, 0, 1),
}
_VCOLS = {1: (3,), 2: (2, 5)}  # columns of a vertical line
_HROWS = {1: (8,), 2: (7, 9)}  # rows of a horizontal line

_table: np.ndarray | None = None
_lock = threading.Lock()


def cp437_char(code: int) -> str:
    if code < 0x20:
        return _LOW_GLYPHS[code]
    if code == 0x7F:
        return "\u2302"
    return bytes([code]).decode("cp437")


def _box_glyph(up: int, down: int, left: int, right: int) -> np.ndarray:
    g = np.zeros((GLYPH_HEIGHT, GLYPH_WIDTH), np.uint8)
    vcols = _VCOLS.get(max(up, down), ())
    hrows = _HROWS.get(max(left, right), ())
    top = min(hrows) if hrows else 8
    bottom = max(hrows) if hrows else 8
    for weight, rows in ((up, slice(0, bottom + 1)), (down, slice(top, GLYPH_HEIGHT))):
        for c in _VCOLS.get(weight, ()):
            g[rows, c] = 1
    first = min(vcols) if vcols else 3
    last = max(vcols) if vcols else 3
    for weight, cols in ((left, slice(0, last + 1)), (right, slice(first, GLYPH_WIDTH))):
        for r in _HROWS.get(weight, ()):
            g[r, cols] = 1
    return g


def _block_glyph(code: int) -> np.ndarray:
    g = np.zeros((GLYPH_HEIGHT, GLYPH_WIDTH), np.uint8)
    yy, xx = np.mgrid[0:GLYPH_HEIGHT, 0:GLYPH_WIDTH]
    if code == 0xB0:
        g[(yy % 2 == 0) & (xx % 4 == yy % 4)] = 1  # light shade
        g[(yy % 2 == 1) & (xx % 4 == (yy + 1) % 4)] = 1
    elif code == 0xB1:
        g[(xx + yy) % 2 == 0] = 1  # medium shade
    elif code == 0xB2:
        g[:] = 1
        g[(yy % 2 == 0) & (xx % 4 == yy % 4)] = 0  # dark shade
    elif code == 0xDB:
        g[:] = 1
    elif code == 0xDC:
        g[8:] = 1
    elif code == 0xDD:
        g[:, :4] = 1
    elif code == 0xDE:
        g[:, 4:] = 1
    elif code == 0xDF:
        g[:8] = 1
    return g


def _render_letters(codes: list[int]) -> dict[int, np.ndarray]:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame
    import pygame.freetype as ft

    ft.init()
    font = ft.Font(os.path.join(os.path.dirname(pygame.__file__), "freesansbold.ttf"),
                   _FONT_SIZE)
    font.antialiased = True
    font.origin = True
    s = _SCALE
    cell_w, cell_h = GLYPH_WIDTH * s, GLYPH_HEIGHT * s
    out = {}
    for code in codes:
        ch = cp437_char(code)
        if ch == " " or not font.get_metrics(ch) or font.get_metrics(ch)[0] is None:
            continue
        r = font.get_rect(ch)
        if r.width <= 0:
            continue
        surf = pygame.Surface((r.width + 2, cell_h), depth=32)
        font.render_to(surf, (1 - r.x, _BASELINE_ROW * s), ch, fgcolor=(255, 255, 255))
        width = surf.get_width()
        if width > (GLYPH_WIDTH - 1) * s:
            width = (GLYPH_WIDTH - 1) * s
            surf = pygame.transform.smoothscale(surf, (width, cell_h))
        cell = pygame.Surface((cell_w, cell_h), depth=32)
        cell.blit(surf, ((cell_w - width) // 2, 0))
        red = pygame.surfarray.array3d(cell)[:, :, 0].T.astype(np.float32) / 255.0
        coverage = red.reshape(GLYPH_HEIGHT, s, GLYPH_WIDTH, s).mean(axis=(1, 3))
        out[code] = (coverage > _THRESHOLD).astype(np.uint8)
    return out


def glyph_table() -> np.ndarray:
    """uint8 array (256, 16, 8): 1 where a glyph's pixel is foreground."""
    global _table
    with _lock:
        if _table is None:
            table = np.zeros((256, GLYPH_HEIGHT, GLYPH_WIDTH), np.uint8)
            drawn = set(_BOX) | {0xB0, 0xB1, 0xB2, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF}
            for code, glyph in _render_letters([c for c in range(256)
                                                if c not in drawn]).items():
                table[code] = glyph
            for code, weights in _BOX.items():
                table[code] = _box_glyph(*weights)
            for code in drawn - set(_BOX):
                table[code] = _block_glyph(code)
            table.setflags(write=False)
            _table = table
        return _table
