"""SDL scancodes (USB HID keyboard usages) to PC/AT set-1 scancode bytes.

The local window sends the guest the physical key that was pressed, not
the character the host layout makes of it (like QEMU's SDL display), so
the guest's own keymap decides what the key means.

A set-1 key is one byte (make; break = make | 0x80), or the same after an
0xE0 prefix for the keys the AT-101 keyboard added.  Two keys send longer
sequences, as real keyboards do: Print Screen is sent as a fake left shift
around the keypad-asterisk code (E0 2A E0 37 / E0 B7 E0 AA), and Pause as
E1 1D 45 E1 9D C5 on press and nothing on release.
"""

from __future__ import annotations

E0 = 0x100  # marks a code sent after an 0xE0 prefix

# USB usage (= SDL_Scancode) -> set-1 make code.
USB_TO_SET1: dict[int, int] = {
    # letters a..z
    4: 0x1E, 5: 0x30, 6: 0x2E, 7: 0x20, 8: 0x12, 9: 0x21, 10: 0x22, 11: 0x23, 12: 0x17,
    13: 0x24, 14: 0x25, 15: 0x26, 16: 0x32, 17: 0x31, 18: 0x18, 19: 0x19, 20: 0x10,
    21: 0x13, 22: 0x1F, 23: 0x14, 24: 0x16, 25: 0x2F, 26: 0x11, 27: 0x2D, 28: 0x15,
    29: 0x2C,
    # digits 1..9, 0
    30: 0x02, 31: 0x03, 32: 0x04, 33: 0x05, 34: 0x06, 35: 0x07, 36: 0x08, 37: 0x09,
    38: 0x0A, 39: 0x0B,
    40: 0x1C,  # return
    41: 0x01,  # escape
    42: 0x0E,  # backspace
    43: 0x0F,  # tab
    44: 0x39,  # space
    45: 0x0C, 46: 0x0D,  # - =
    47: 0x1A, 48: 0x1B,  # [ ]
    49: 0x2B, 50: 0x2B,  # backslash, non-US # (the same key position)
    51: 0x27, 52: 0x28, 53: 0x29,  # ; ' `
    54: 0x33, 55: 0x34, 56: 0x35,  # , . /
    57: 0x3A,  # caps lock
    # F1..F12
    58: 0x3B, 59: 0x3C, 60: 0x3D, 61: 0x3E, 62: 0x3F, 63: 0x40, 64: 0x41, 65: 0x42,
    66: 0x43, 67: 0x44, 68: 0x57, 69: 0x58,
    71: 0x46,  # scroll lock
    73: E0 | 0x52, 74: E0 | 0x47, 75: E0 | 0x49,  # insert home page-up
    76: E0 | 0x53, 77: E0 | 0x4F, 78: E0 | 0x51,  # delete end page-down
    79: E0 | 0x4D, 80: E0 | 0x4B, 81: E0 | 0x50, 82: E0 | 0x48,  # right left down up
    83: 0x45,  # num lock
    84: E0 | 0x35, 85: 0x37, 86: 0x4A, 87: 0x4E, 88: E0 | 0x1C,  # keypad / * - + enter
    # keypad 1..9, 0, .
    89: 0x4F, 90: 0x50, 91: 0x51, 92: 0x4B, 93: 0x4C, 94: 0x4D, 95: 0x47, 96: 0x48,
    97: 0x49, 98: 0x52, 99: 0x53,
    100: 0x56,  # the extra key left of Z on ISO keyboards
    101: E0 | 0x5D,  # application (menu)
    102: E0 | 0x5E,  # power
    103: 0x59,  # keypad =
    104: 0x5D, 105: 0x5E, 106: 0x5F,  # F13..F15
    127: E0 | 0x20, 128: E0 | 0x30, 129: E0 | 0x2E,  # mute, volume up, volume down
    133: 0x7E,  # keypad , (Brazilian)
    135: 0x73, 136: 0x70, 137: 0x7D, 138: 0x79, 139: 0x7B,  # ro kana yen henkan muhenkan
    144: 0x72, 145: 0x71,  # hangul, hanja
    224: 0x1D, 225: 0x2A, 226: 0x38, 227: E0 | 0x5B,  # left ctrl shift alt gui
    228: E0 | 0x1D, 229: 0x36, 230: E0 | 0x38, 231: E0 | 0x5C,  # right ctrl shift alt gui
}

PRINT_SCREEN = 70
PAUSE = 72

# Modifier usages the window's own hot keys look at.
LEFT_CTRL, RIGHT_CTRL = 224, 228
LEFT_ALT, RIGHT_ALT = 226, 230


def set1_bytes(usage: int, pressed: bool) -> bytes:
    """The set-1 bytes for a key press or release; empty for keys a PC
    keyboard does not have."""
    if usage == PAUSE:
        return bytes((0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5)) if pressed else b""
    if usage == PRINT_SCREEN:
        return (bytes((0xE0, 0x2A, 0xE0, 0x37)) if pressed
                else bytes((0xE0, 0xB7, 0xE0, 0xAA)))
    code = USB_TO_SET1.get(usage)
    if code is None:
        return b""
    byte = (code & 0x7F) | (0 if pressed else 0x80)
    return bytes((0xE0, byte)) if code & E0 else bytes((byte,))
