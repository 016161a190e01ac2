"""SPICE wire constants: channel types, capabilities, link errors, message ids.

Values are those of spice-protocol's ``spice/protocol.h`` and
``spice/enums.h`` (protocol 2.2).  Message layouts are spice-common's
``spice.proto``; they are marshalled in :mod:`spice.wire` and the channel
modules.
"""

from __future__ import annotations

from enum import IntEnum

SPICE_MAGIC = b"REDQ"
SPICE_VERSION_MAJOR = 2
SPICE_VERSION_MINOR = 2

LINK_HEADER_SIZE = 16  # magic, major, minor, size
LINK_MESS_SIZE = 18  # connection_id, type, id, num_common_caps, num_caps, caps_offset
LINK_REPLY_SIZE = 178  # error, pub_key[162], num_common_caps, num_caps, caps_offset
LINK_MAX_SIZE = 4096  # spice-server refuses bigger link messages
LINK_MAX_CAPS = 1024  # per capability class
TICKET_PUBKEY_BYTES = 162  # DER SubjectPublicKeyInfo of an RSA-1024 key
TICKET_KEY_BITS = 1024
ENCRYPTED_TICKET_SIZE = TICKET_KEY_BITS // 8
MAX_PASSWORD_LENGTH = 60

MINI_HEADER_SIZE = 6  # type u16, size u32
FULL_HEADER_SIZE = 18  # serial u64, type u16, size u32, sub_list u32


class LinkErr(IntEnum):
    OK = 0
    ERROR = 1
    INVALID_MAGIC = 2
    INVALID_DATA = 3
    VERSION_MISMATCH = 4
    NEED_SECURED = 5
    NEED_UNSECURED = 6
    PERMISSION_DENIED = 7
    BAD_CONNECTION_ID = 8
    CHANNEL_NOT_AVAILABLE = 9


class ChannelType(IntEnum):
    MAIN = 1
    DISPLAY = 2
    INPUTS = 3
    CURSOR = 4
    PLAYBACK = 5
    RECORD = 6
    TUNNEL = 7
    SMARTCARD = 8
    USBREDIR = 9
    PORT = 10
    WEBDAV = 11


class CommonCap(IntEnum):
    PROTOCOL_AUTH_SELECTION = 0
    AUTH_SPICE = 1
    AUTH_SASL = 2
    MINI_HEADER = 3


class MainCap(IntEnum):
    SEMI_SEAMLESS_MIGRATE = 0
    NAME_AND_UUID = 1
    AGENT_CONNECTED_TOKENS = 2
    SEAMLESS_MIGRATE = 3


class DisplayCap(IntEnum):
    SIZED_STREAM = 0
    MONITORS_CONFIG = 1
    COMPOSITE = 2
    A8_SURFACE = 3
    STREAM_REPORT = 4
    LZ4_COMPRESSION = 5
    PREF_COMPRESSION = 6
    GL_SCANOUT = 7
    MULTI_CODEC = 8
    CODEC_MJPEG = 9
    CODEC_VP8 = 10
    CODEC_H264 = 11
    PREF_VIDEO_CODEC_TYPE = 12
    CODEC_VP9 = 13
    CODEC_H265 = 14


class InputsCap(IntEnum):
    KEY_SCANCODE = 0


# -- messages common to every channel -----------------------------------------


class Msg(IntEnum):
    MIGRATE = 1
    MIGRATE_DATA = 2
    SET_ACK = 3
    PING = 4
    WAIT_FOR_CHANNELS = 5
    DISCONNECTING = 6
    NOTIFY = 7
    LIST = 8


class MsgC(IntEnum):
    ACK_SYNC = 1
    ACK = 2
    PONG = 3
    MIGRATE_FLUSH_MARK = 4
    MIGRATE_DATA = 5
    DISCONNECTING = 6


# -- main channel ----------------------------------------------------------------


class MsgMain(IntEnum):
    MIGRATE_BEGIN = 101
    MIGRATE_CANCEL = 102
    INIT = 103
    CHANNELS_LIST = 104
    MOUSE_MODE = 105
    MULTI_MEDIA_TIME = 106
    AGENT_CONNECTED = 107
    AGENT_DISCONNECTED = 108
    AGENT_DATA = 109
    AGENT_TOKEN = 110
    MIGRATE_SWITCH_HOST = 111
    MIGRATE_END = 112
    NAME = 113
    UUID = 114
    AGENT_CONNECTED_TOKENS = 115
    MIGRATE_BEGIN_SEAMLESS = 116
    MIGRATE_DST_SEAMLESS_ACK = 117
    MIGRATE_DST_SEAMLESS_NACK = 118


class MsgCMain(IntEnum):
    CLIENT_INFO = 101
    MIGRATE_CONNECTED = 102
    MIGRATE_CONNECT_ERROR = 103
    ATTACH_CHANNELS = 104
    MOUSE_MODE_REQUEST = 105
    AGENT_START = 106
    AGENT_DATA = 107
    AGENT_TOKEN = 108
    MIGRATE_END = 109
    MIGRATE_DST_DO_SEAMLESS = 110
    MIGRATE_CONNECTED_SEAMLESS = 111
    QUALITY_INDICATOR = 112


class MouseMode(IntEnum):
    SERVER = 1
    CLIENT = 2


# -- display channel ---------------------------------------------------------------


class MsgDisplay(IntEnum):
    MODE = 101
    MARK = 102
    RESET = 103
    COPY_BITS = 104
    INVAL_LIST = 105
    INVAL_ALL_PIXMAPS = 106
    INVAL_PALETTE = 107
    INVAL_ALL_PALETTES = 108
    STREAM_CREATE = 122
    STREAM_DATA = 123
    STREAM_CLIP = 124
    STREAM_DESTROY = 125
    STREAM_DESTROY_ALL = 126
    DRAW_FILL = 302
    DRAW_OPAQUE = 303
    DRAW_COPY = 304
    DRAW_BLEND = 305
    DRAW_BLACKNESS = 306
    DRAW_WHITENESS = 307
    DRAW_INVERS = 308
    DRAW_ROP3 = 309
    DRAW_STROKE = 310
    DRAW_TEXT = 311
    DRAW_TRANSPARENT = 312
    DRAW_ALPHA_BLEND = 313
    SURFACE_CREATE = 314
    SURFACE_DESTROY = 315
    STREAM_DATA_SIZED = 316
    MONITORS_CONFIG = 317
    DRAW_COMPOSITE = 318
    STREAM_ACTIVATE_REPORT = 319
    GL_SCANOUT_UNIX = 320
    GL_DRAW = 321
    QUALITY_INDICATOR = 322


class MsgCDisplay(IntEnum):
    INIT = 101
    STREAM_REPORT = 102
    PREFERRED_COMPRESSION = 103
    GL_DRAW_DONE = 104
    PREFERRED_VIDEO_CODEC_TYPE = 105


SURFACE_FLAGS_PRIMARY = 1
SURFACE_FLAGS_STREAMING_MODE = 2

# SPICE_RES_TYPE_PIXMAP: the resource type in INVAL_LIST entries.
RES_TYPE_PIXMAP = 1


# -- inputs channel ------------------------------------------------------------------


class MsgInputs(IntEnum):
    INIT = 101
    KEY_MODIFIERS = 102
    MOUSE_MOTION_ACK = 111


class MsgCInputs(IntEnum):
    KEY_DOWN = 101
    KEY_UP = 102
    KEY_MODIFIERS = 103
    KEY_SCANCODE = 104
    MOUSE_MOTION = 111
    MOUSE_POSITION = 112
    MOUSE_PRESS = 113
    MOUSE_RELEASE = 114


INPUT_MOTION_ACK_BUNCH = 4

KEYBOARD_MODIFIER_SCROLL_LOCK = 1
KEYBOARD_MODIFIER_NUM_LOCK = 2
KEYBOARD_MODIFIER_CAPS_LOCK = 4


class MouseButton(IntEnum):
    INVALID = 0
    LEFT = 1
    MIDDLE = 2
    RIGHT = 3
    UP = 4
    DOWN = 5
    SIDE = 6
    EXTRA = 7


MOUSE_BUTTON_MASK_LEFT = 1
MOUSE_BUTTON_MASK_MIDDLE = 2
MOUSE_BUTTON_MASK_RIGHT = 4


# -- cursor channel ------------------------------------------------------------------


class MsgCursor(IntEnum):
    INIT = 101
    RESET = 102
    SET = 103
    MOVE = 104
    HIDE = 105
    TRAIL = 106
    INVAL_ONE = 107
    INVAL_ALL = 108


CURSOR_FLAGS_NONE = 1
CURSOR_FLAGS_CACHE_ME = 2
CURSOR_FLAGS_FROM_CACHE = 4


# -- notify -------------------------------------------------------------------------

NOTIFY_SEVERITY_INFO = 0
NOTIFY_SEVERITY_WARN = 1
NOTIFY_SEVERITY_ERROR = 2
NOTIFY_VISIBILITY_LOW = 0
NOTIFY_VISIBILITY_MEDIUM = 1
NOTIFY_VISIBILITY_HIGH = 2
WARN_GENERAL = 0


# -- image compression settings (spice-server's SpiceImageCompression) ----------------


class ImageCompression(IntEnum):
    INVALID = 0
    OFF = 1
    AUTO_GLZ = 2
    AUTO_LZ = 3
    QUIC = 4
    GLZ = 5
    LZ = 6
    LZ4 = 7


class WanCompression(IntEnum):
    INVALID = 0
    AUTO = 1
    NEVER = 2
    ALWAYS = 3


class StreamVideo(IntEnum):
    INVALID = 0
    OFF = 1
    ALL = 2
    FILTER = 3


def caps_to_words(bits: list[int] | tuple[int, ...]) -> list[int]:
    """Capability bit numbers -> the u32 words sent on the wire."""
    if not bits:
        return []
    words = [0] * (max(bits) // 32 + 1)
    for b in bits:
        words[b // 32] |= 1 << (b % 32)
    return words


def has_cap(words: tuple[int, ...] | list[int], cap: int) -> bool:
    index = cap // 32
    return index < len(words) and bool(words[index] >> (cap % 32) & 1)
