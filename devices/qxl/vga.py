"""The VGA side of ``qxl-vga``: legacy registers, text mode and the Bochs
VBE linear modes, rendered to 32-bit xRGB frames.

What is emulated:

* the register files a BIOS and an early-boot kernel touch -- misc output,
  sequencer, graphics controller, attribute controller (with its index /
  data flip-flop, reset by reading input status 1), CRTC (with the CR0-7
  write protection), the DAC palette and the feature control register --
  with QEMU's write masks and its colour/monochrome port decoding;
* text mode: character/attribute pairs in the legacy window (0xB8000 in
  colour mode), 8 or 9 dots wide (line-graphics duplication of column 8 for
  0xB0-0xDF), character height from CR9, colours through the attribute
  palette and the DAC, the CRTC cursor blinking at QEMU's period, and no
  attribute blink (QEMU treats bit 7 as a background intensity bit too);
* Bochs VBE (index port 0x1CE, data 0x1CF/0x1D0) with QEMU's register
  fix-ups (a mode never reaches past the VBE memory, the class of
  CVE-2014-3615), linear framebuffer at offset 0 of the RAM BAR, 8 (DAC
  palette, 6- or 8-bit), 15, 16, 24 and 32 bits per pixel.

What is not: planar 16-colour and mode 13h graphics (the legacy window is
plain memory, not a planar VGA aperture), banked VBE access through the
legacy window, and split-screen line compare.  Those modes render black.

The power-on register values are those of BIOS mode 3 (80x25 colour text)
so that a guest without a VGA BIOS -- ours -- can write text to 0xB8000
at once, as it could on QEMU after SeaVGABIOS ran.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from devices.bus import Clock
from devices.byteports import BytePortTable
from devices.qxl.font import GLYPH_HEIGHT, glyph_table

log = logging.getLogger(__name__)

LOWMEM_SIZE = 0x20000

# QEMU's write masks.
SR_MASK = (0x03, 0x3D, 0x0F, 0x3F, 0x0E, 0x00, 0x00, 0xFF)
GR_MASK = (0x0F, 0x0F, 0x0F, 0x1F, 0x03, 0x7B, 0x0F, 0x0F, 0xFF) + (0,) * 7
ST01_V_RETRACE, ST01_DISP_ENABLE = 0x08, 0x01

# BIOS mode 3 register values.
MODE3_MISC = 0x67
MODE3_SR = (0x03, 0x00, 0x03, 0x00, 0x02, 0, 0, 0)
MODE3_CR = (0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F, 0x00, 0x4F, 0x0D, 0x0E, 0x00,
            0x00, 0x00, 0x00, 0x9C, 0x8E, 0x8F, 0x28, 0x1F, 0x96, 0xB9, 0xA3, 0xFF)
MODE3_GR = (0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x00, 0xFF)
MODE3_AR = (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A, 0x3B, 0x3C,
            0x3D, 0x3E, 0x3F, 0x0C, 0x00, 0x0F, 0x08, 0x00)

# Bochs VBE (QEMU's include/hw/display/bochs-vbe.h).
VBE_MAX_XRES, VBE_MAX_YRES, VBE_MAX_BPP = 16000, 12000, 32
(VBE_ID, VBE_XRES, VBE_YRES, VBE_BPP, VBE_ENABLE, VBE_BANK, VBE_VIRT_WIDTH,
 VBE_VIRT_HEIGHT, VBE_X_OFFSET, VBE_Y_OFFSET) = range(10)
VBE_NREGS = 10
VBE_VIDEO_MEMORY_64K = 0x0A
VBE_IDS = range(0xB0C0, 0xB0C6)
VBE_ENABLED, VBE_GETCAPS, VBE_8BIT_DAC, VBE_NOCLEARMEM = 0x01, 0x02, 0x20, 0x80

TEXT_CURSOR_PERIOD_MS = 1000 * 2 * 16 // 60  # QEMU: the cursor toggles every half
MAX_TEXT_CELLS = 160 * 100


def _ega_palette() -> np.ndarray:
    """The 64 EGA colours a VGA BIOS loads into the DAC (6-bit values)."""
    pal = np.zeros(768, np.uint8)
    for i in range(64):
        pal[3 * i] = 0x2A * ((i >> 2) & 1) + 0x15 * ((i >> 5) & 1)
        pal[3 * i + 1] = 0x2A * ((i >> 1) & 1) + 0x15 * ((i >> 4) & 1)
        pal[3 * i + 2] = 0x2A * (i & 1) + 0x15 * ((i >> 3) & 1)
    return pal


def _c6_to_8(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint32) & 0x3F
    return (v << 2) | (v >> 4)


class VGA:
    LOWMEM_BASE = 0xA0000

    def __init__(self, vram: np.ndarray, vbe_size: int, clock: Clock) -> None:
        self.vram = vram  # the RAM BAR: the VBE framebuffer starts at offset 0
        self.vbe_size = vbe_size
        self.clock = clock
        raw = np.zeros(LOWMEM_SIZE + 4096, np.uint8)
        start = -raw.ctypes.data % 4096
        self.lowmem = raw[start:start + LOWMEM_SIZE]
        self.vbe_bank_mask = (vram.nbytes >> 16) - 1
        # Registers are written on the vCPU thread and read by the refresh
        # timer on the main loop: a frame must not mix two modes' geometry
        # (QEMU renders under the big lock for the same reason).
        self._lock = threading.RLock()
        self.ports = BytePortTable(self._port_table(), 0x30, "vga")
        self.vbe_ports = _VBEPorts(self)
        self._warned: set[str] = set()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self.misc = MODE3_MISC
        self.st00 = 0
        self.st01 = 0
        self.fcr = 0
        self.sr_index = 0
        self.sr = np.array(MODE3_SR, np.uint8)
        self.gr_index = 0
        self.gr = np.zeros(16, np.uint8)
        self.gr[:len(MODE3_GR)] = MODE3_GR
        self.ar_index = 0x20  # palette address source set: display enabled
        self.ar_flip_flop = 0
        self.ar = np.array(MODE3_AR, np.uint8)
        self.cr_index = 0
        self.cr = np.zeros(256, np.uint8)
        self.cr[:len(MODE3_CR)] = MODE3_CR
        self.dac_read_index = 0
        self.dac_write_index = 0
        self.dac_sub_index = 0
        self.dac_state = 0
        self.dac_cache = [0, 0, 0]
        self.dac_8bit = False
        self.palette = _ega_palette()
        self.vbe_index = 0
        self.vbe_regs = [0] * VBE_NREGS
        self.vbe_regs[VBE_ID] = 0xB0C5
        self.vbe_line_offset = 0
        self.vbe_start_addr = 0

    # ------------------------------------------------------------------
    # legacy ports 0x3B0-0x3DF

    def _port_table(self) -> dict:
        def port(addr: int, reader, writer) -> tuple[int, tuple]:
            return addr - 0x3B0, (lambda: self._read(addr, reader),
                                  lambda v: self._write(addr, writer, v))

        regs = [
            port(0x3C0, self._rd_ar_index, self._wr_ar),
            port(0x3C1, self._rd_ar_data, None),
            port(0x3C2, lambda: self.st00, self._wr_misc),
            port(0x3C4, lambda: self.sr_index, self._wr_sr_index),
            port(0x3C5, lambda: int(self.sr[self.sr_index]), self._wr_sr),
            port(0x3C7, lambda: self.dac_state, self._wr_dac_read_index),
            port(0x3C8, lambda: self.dac_write_index, self._wr_dac_write_index),
            port(0x3C9, self._rd_dac_data, self._wr_dac_data),
            port(0x3CA, lambda: self.fcr, None),
            port(0x3CC, lambda: self.misc, None),
            port(0x3CE, lambda: self.gr_index, self._wr_gr_index),
            port(0x3CF, lambda: int(self.gr[self.gr_index]), self._wr_gr),
        ]
        for base in (0x3B0, 0x3D0):
            regs += [port(base + 4, lambda: self.cr_index, self._wr_cr_index),
                     port(base + 5, lambda: int(self.cr[self.cr_index]), self._wr_cr),
                     port(base + 0xA, self._rd_st01, self._wr_fcr)]
        for addr in (0x3C3, 0x3C6, 0x3CB, 0x3CD):  # decoded, nothing behind them
            regs.append(port(addr, lambda: 0, None))
        return dict(regs)

    def _invalid(self, addr: int) -> bool:
        """Colour mode does not decode 0x3Bx, monochrome mode not 0x3Dx."""
        if self.misc & 1:
            return 0x3B0 <= addr <= 0x3BF
        return 0x3D0 <= addr <= 0x3DF

    def _read(self, addr: int, reader) -> int:
        with self._lock:
            return 0xFF if self._invalid(addr) else reader()

    def _write(self, addr: int, writer, value: int) -> None:
        with self._lock:
            if writer is not None and not self._invalid(addr):
                writer(value)

    def _rd_ar_index(self) -> int:
        return self.ar_index if self.ar_flip_flop == 0 else 0

    def _rd_ar_data(self) -> int:
        index = self.ar_index & 0x1F
        return int(self.ar[index]) if index < len(self.ar) else 0

    def _wr_ar(self, v: int) -> None:
        if self.ar_flip_flop == 0:
            self.ar_index = v & 0x3F
        else:
            index = self.ar_index & 0x1F
            masks = {0x10: ~0x10, 0x11: 0xFF, 0x12: ~0xC0, 0x13: ~0xF0, 0x14: ~0xF0}
            if index < 0x10:
                self.ar[index] = v & 0x3F
            elif index in masks:
                self.ar[index] = v & masks[index] & 0xFF
        self.ar_flip_flop ^= 1

    def _wr_misc(self, v: int) -> None:
        self.misc = v & ~0x10 & 0xFF

    def _wr_sr_index(self, v: int) -> None:
        self.sr_index = v & 7

    def _wr_sr(self, v: int) -> None:
        self.sr[self.sr_index] = v & SR_MASK[self.sr_index]

    def _wr_dac_read_index(self, v: int) -> None:
        self.dac_read_index, self.dac_sub_index, self.dac_state = v, 0, 3

    def _wr_dac_write_index(self, v: int) -> None:
        self.dac_write_index, self.dac_sub_index, self.dac_state = v, 0, 0

    def _rd_dac_data(self) -> int:
        val = int(self.palette[self.dac_read_index * 3 + self.dac_sub_index])
        self.dac_sub_index += 1
        if self.dac_sub_index == 3:
            self.dac_sub_index = 0
            self.dac_read_index = (self.dac_read_index + 1) & 0xFF
        return val

    def _wr_dac_data(self, v: int) -> None:
        self.dac_cache[self.dac_sub_index] = v
        self.dac_sub_index += 1
        if self.dac_sub_index == 3:
            i = self.dac_write_index * 3
            self.palette[i:i + 3] = self.dac_cache
            self.dac_sub_index = 0
            self.dac_write_index = (self.dac_write_index + 1) & 0xFF

    def _wr_gr_index(self, v: int) -> None:
        self.gr_index = v & 0x0F

    def _wr_gr(self, v: int) -> None:
        self.gr[self.gr_index] = v & GR_MASK[self.gr_index]

    def _wr_cr_index(self, v: int) -> None:
        self.cr_index = v

    def _wr_cr(self, v: int) -> None:
        if self.cr[0x11] & 0x80 and self.cr_index <= 7:
            if self.cr_index == 7:  # bit 4 of CR7 stays writable
                self.cr[7] = (int(self.cr[7]) & ~0x10 | v & 0x10) & 0xFF
            return
        self.cr[self.cr_index] = v

    def _rd_st01(self) -> int:
        self.st01 ^= ST01_V_RETRACE | ST01_DISP_ENABLE  # toggle to fool pollers
        self.ar_flip_flop = 0
        return self.st01

    def _wr_fcr(self, v: int) -> None:
        self.fcr = v & 0x10

    # ------------------------------------------------------------------
    # Bochs VBE

    @property
    def vbe_enabled(self) -> bool:
        return bool(self.vbe_regs[VBE_ENABLE] & VBE_ENABLED)

    def vbe_read(self) -> int:
        with self._lock:
            return self._vbe_read()

    def _vbe_read(self) -> int:
        r, i = self.vbe_regs, self.vbe_index
        if i < VBE_NREGS:
            if r[VBE_ENABLE] & VBE_GETCAPS:
                return {VBE_XRES: VBE_MAX_XRES, VBE_YRES: VBE_MAX_YRES,
                        VBE_BPP: VBE_MAX_BPP}.get(i, r[i])
            return r[i]
        if i == VBE_VIDEO_MEMORY_64K:
            return self.vbe_size >> 16
        return 0

    def vbe_write(self, v: int) -> None:
        with self._lock:
            self._vbe_write(v)

    def _vbe_write(self, v: int) -> None:
        r, i = self.vbe_regs, self.vbe_index
        if i == VBE_ID:
            if v in VBE_IDS:
                r[i] = v
        elif i in (VBE_XRES, VBE_YRES, VBE_BPP, VBE_VIRT_WIDTH, VBE_X_OFFSET, VBE_Y_OFFSET):
            r[i] = v
            self._vbe_fixup()
        elif i == VBE_BANK:
            r[i] = v & self.vbe_bank_mask
        elif i == VBE_ENABLE:
            if v & VBE_ENABLED and not r[VBE_ENABLE] & VBE_ENABLED:
                r[VBE_VIRT_WIDTH] = r[VBE_X_OFFSET] = r[VBE_Y_OFFSET] = 0
                r[VBE_ENABLE] |= VBE_ENABLED
                self._vbe_fixup()
                if not v & VBE_NOCLEARMEM:
                    self.vram[:r[VBE_YRES] * self.vbe_line_offset] = 0
            self.dac_8bit = bool(v & VBE_8BIT_DAC)
            r[i] = v

    def _vbe_fixup(self) -> None:
        """QEMU's vbe_fixup_regs: clamp the mode so it fits the VBE memory."""
        r = self.vbe_regs
        if not self.vbe_enabled:
            return
        if r[VBE_BPP] in (4, 8, 16, 24, 32):
            bits = r[VBE_BPP]
        elif r[VBE_BPP] == 15:
            bits = 16
        else:
            bits = r[VBE_BPP] = 8
        r[VBE_XRES] &= ~7 & 0xFFFF
        r[VBE_XRES] = min(r[VBE_XRES] or 8, VBE_MAX_XRES)
        r[VBE_VIRT_WIDTH] = min(r[VBE_VIRT_WIDTH] & ~7 & 0xFFFF, VBE_MAX_XRES)
        r[VBE_VIRT_WIDTH] = max(r[VBE_VIRT_WIDTH], r[VBE_XRES])
        linelength = r[VBE_VIRT_WIDTH] * bits // 8
        maxy = self.vbe_size // linelength
        r[VBE_YRES] = min(r[VBE_YRES] or 1, VBE_MAX_YRES, maxy)
        r[VBE_X_OFFSET] = min(r[VBE_X_OFFSET], VBE_MAX_XRES)
        r[VBE_Y_OFFSET] = min(r[VBE_Y_OFFSET], VBE_MAX_YRES)
        offset = r[VBE_X_OFFSET] * bits // 8 + r[VBE_Y_OFFSET] * linelength
        if offset + r[VBE_YRES] * linelength > self.vbe_size:
            r[VBE_Y_OFFSET] = 0
            offset = r[VBE_X_OFFSET] * bits // 8
            if offset + r[VBE_YRES] * linelength > self.vbe_size:
                r[VBE_X_OFFSET] = 0
                offset = 0
        r[VBE_VIRT_HEIGHT] = min(maxy, 0xFFFF)
        self.vbe_line_offset = linelength
        self.vbe_start_addr = offset // 4

    # ------------------------------------------------------------------
    # rendering

    def render(self) -> np.ndarray:
        """The current picture as a (height, width) uint32 xRGB array."""
        with self._lock:
            return self._render()

    def _render(self) -> np.ndarray:
        if self.vbe_enabled:
            return self._render_vbe()
        width, height = self._legacy_size()
        if not self.ar_index & 0x20:
            return np.zeros((height, width), np.uint32)  # attribute controller: blank
        if self.gr[6] & 1:
            self._warn_once("graphics", "legacy VGA graphics modes are not emulated")
            return np.zeros((height, width), np.uint32)
        return self._render_text()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("vga: %s", message)

    def _text_geometry(self) -> tuple[int, int, int, int]:
        cheight = (int(self.cr[9]) & 0x1F) + 1
        cwidth = 8 if self.sr[1] & 1 else 9
        if self.sr[1] & 0x08:
            cwidth = 16
        cols = int(self.cr[1]) + 1
        vde = int(self.cr[0x12]) | (int(self.cr[7]) & 0x02) << 7 | (int(self.cr[7]) & 0x40) << 3
        rows = (vde + 1) // cheight
        return cols, rows, cwidth, cheight

    def _legacy_size(self) -> tuple[int, int]:
        cols, rows, cwidth, cheight = self._text_geometry()
        if self.gr[6] & 1:
            vde = int(self.cr[0x12]) | (int(self.cr[7]) & 0x02) << 7 \
                | (int(self.cr[7]) & 0x40) << 3
            return max(8, cols * 8), max(1, vde + 1)
        if cols * rows <= 1 or cols * rows > MAX_TEXT_CELLS:
            return 640, 480
        return cols * cwidth, rows * cheight

    def _palette16(self) -> np.ndarray:
        ar = self.ar.astype(np.uint32)
        if ar[0x10] & 0x80:
            index = ((ar[0x14] & 0xF) << 4) | (ar[:16] & 0xF)
        else:
            index = ((ar[0x14] & 0xC) << 4) | (ar[:16] & 0x3F)
        rgb = _c6_to_8(self.palette.reshape(256, 3)[index])
        return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]

    def _render_text(self) -> np.ndarray:
        cols, rows, cwidth, cheight = self._text_geometry()
        if cols * rows <= 1 or cols * rows > MAX_TEXT_CELLS:
            return np.zeros((480, 640), np.uint32)
        window = {0: 0, 1: 0, 2: 0x10000, 3: 0x18000}[(int(self.gr[6]) >> 2) & 3]
        text = self.lowmem[window:].view("<u2")
        start = int(self.cr[0x0C]) << 8 | int(self.cr[0x0D])
        pitch = 2 * int(self.cr[0x13])  # characters per text row
        index = start + pitch * np.arange(rows)[:, None] + np.arange(cols)[None, :]
        cells = np.take(text, index, mode="wrap")
        chars, attrs = (cells & 0xFF).astype(np.intp), (cells >> 8).astype(np.intp)
        font = glyph_table()
        glyphs = np.zeros((256, cheight, 8), np.uint8)
        n = min(cheight, GLYPH_HEIGHT)
        glyphs[:, :n] = font[:, :n]
        bits = glyphs[chars]  # (rows, cols, cheight, 8)
        if cwidth == 9:
            ninth = np.zeros(bits.shape[:3] + (1,), np.uint8)
            if self.ar[0x10] & 0x04:
                dup = (chars >= 0xB0) & (chars <= 0xDF)
                ninth[dup] = bits[dup][..., 7:8]
            bits = np.concatenate([bits, ninth], axis=3)
        elif cwidth == 16:
            bits = np.repeat(bits, 2, axis=3)
        self._draw_cursor(bits, start, pitch, cols, rows, cheight)
        pal = self._palette16()
        fg = pal[attrs & 0xF][:, :, None, None]
        bg = pal[attrs >> 4][:, :, None, None]
        pixels = np.where(bits.astype(bool), fg, bg).astype(np.uint32)
        return np.ascontiguousarray(pixels.transpose(0, 2, 1, 3)).reshape(
            rows * cheight, cols * cwidth)

    def _draw_cursor(self, bits: np.ndarray, start: int, pitch: int, cols: int, rows: int,
                     cheight: int) -> None:
        """The CRTC cursor: scan lines CR0A..CR0B of the cell at CR0E:CR0F,
        blinking (the phase comes from the clock, as QEMU's does)."""
        now_ms = self.clock.now_ns() // 1_000_000
        if (now_ms // (TEXT_CURSOR_PERIOD_MS // 2)) % 2 or self.cr[0x0A] & 0x20 or not pitch:
            return
        offset = (int(self.cr[0x0E]) << 8 | int(self.cr[0x0F])) - start
        if offset < 0:
            return
        row, col = divmod(offset, pitch)
        first = int(self.cr[0x0A]) & 0x1F
        last = min(int(self.cr[0x0B]) & 0x1F, cheight - 1)
        if row < rows and col < cols and first <= last:
            bits[row, col, first:last + 1, :] = 1

    def _render_vbe(self) -> np.ndarray:
        r = self.vbe_regs
        width, height, bpp = r[VBE_XRES], r[VBE_YRES], r[VBE_BPP]
        start, pitch = self.vbe_start_addr * 4, self.vbe_line_offset
        if bpp == 4:
            self._warn_once("vbe4", "4-bit planar VBE modes are not emulated")
            return np.zeros((height, width), np.uint32)
        nbytes = (bpp + 7) // 8
        rows = self.vram[start:start + height * pitch].reshape(height, pitch)
        rows = rows[:, :width * nbytes]
        if bpp == 32:
            return rows.copy().view("<u4")
        if bpp == 24:
            px = rows.reshape(height, width, 3).astype(np.uint32)
            return (px[..., 2] << 16) | (px[..., 1] << 8) | px[..., 0]
        if bpp in (15, 16):
            v = rows.copy().view("<u2").astype(np.uint32)
            if bpp == 16:
                red, green, blue = (v >> 8) & 0xF8, (v >> 3) & 0xFC, (v << 3) & 0xF8
            else:
                red, green, blue = (v >> 7) & 0xF8, (v >> 2) & 0xF8, (v << 3) & 0xF8
            return (red << 16) | (green << 8) | blue
        pal = self.palette.reshape(256, 3).astype(np.uint32)
        if not self.dac_8bit:
            pal = _c6_to_8(pal)
        pal32 = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
        return pal32[rows]


class _VBEPorts:
    """0x1CE: index, 0x1CF and 0x1D0: data (16-bit registers)."""

    def __init__(self, vga: VGA) -> None:
        self.vga = vga

    def io_read(self, offset: int, size: int) -> int:
        if offset == 0:
            return self.vga.vbe_index
        return self.vga.vbe_read()

    def io_write(self, offset: int, size: int, value: int) -> None:
        if offset == 0:
            self.vga.vbe_index = value & 0xFFFF
        else:
            self.vga.vbe_write(value & 0xFFFF)
