"""Server options and the QEMU-style option string.

``SpiceOptions.from_qemu_string("port=5900,addr=127.0.0.1,password-file=F")``
accepts the ``-spice`` keys that make sense here.  The password is never
taken from the option string itself (it would show on the command line):
it comes from ``password-file=`` or, failing that, the ``SPICE_PASSWORD``
environment variable.
"""

from __future__ import annotations

import os
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from spice.protocol import (
    MAX_PASSWORD_LENGTH,
    ImageCompression,
    StreamVideo,
    WanCompression,
)

PASSWORD_ENV = "SPICE_PASSWORD"

IMAGE_COMPRESSION_NAMES = {
    "off": ImageCompression.OFF,
    "auto_glz": ImageCompression.AUTO_GLZ,
    "auto_lz": ImageCompression.AUTO_LZ,
    "quic": ImageCompression.QUIC,
    "glz": ImageCompression.GLZ,
    "lz": ImageCompression.LZ,
    "lz4": ImageCompression.LZ4,
}
WAN_COMPRESSION_NAMES = {
    "auto": WanCompression.AUTO,
    "never": WanCompression.NEVER,
    "always": WanCompression.ALWAYS,
}
STREAMING_VIDEO_NAMES = {
    "off": StreamVideo.OFF,
    "all": StreamVideo.ALL,
    "filter": StreamVideo.FILTER,
}
_BOOL = {"on": True, "yes": True, "true": True, "1": True,
         "off": False, "no": False, "false": False, "0": False}


@dataclass
class SpiceOptions:
    addr: str = "127.0.0.1"
    port: int = 5900  # 0 picks a free port (see SpiceServer.port)
    password: str | None = field(default=None, repr=False)
    disable_ticketing: bool = False
    ticket_expiry: float | None = None  # seconds the password stays valid after start
    image_compression: str = "auto_glz"
    jpeg_wan_compression: str = "auto"
    zlib_glz_wan_compression: str = "auto"
    streaming_video: str = "filter"  # spice-server's default (QEMU passes off unless told)
    agent_mouse: bool = True
    name: str | None = None
    uuid: bytes | None = None  # 16 bytes

    def validate(self) -> SpiceOptions:
        """Raise ValueError with one plain sentence if an option is wrong."""
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"port must be a number from 0 to 65535, not {self.port!r}.")
        if not self.addr:
            raise ValueError("addr must not be empty.")
        if self.image_compression not in IMAGE_COMPRESSION_NAMES:
            raise ValueError(f"image-compression must be one of {_names(IMAGE_COMPRESSION_NAMES)}"
                             f", not {self.image_compression!r}.")
        for key, value in (("jpeg-wan-compression", self.jpeg_wan_compression),
                           ("zlib-glz-wan-compression", self.zlib_glz_wan_compression)):
            if value not in WAN_COMPRESSION_NAMES:
                raise ValueError(f"{key} must be one of {_names(WAN_COMPRESSION_NAMES)}, "
                                 f"not {value!r}.")
        if self.streaming_video not in STREAMING_VIDEO_NAMES:
            raise ValueError(f"streaming-video must be one of {_names(STREAMING_VIDEO_NAMES)}, "
                             f"not {self.streaming_video!r}.")
        if self.ticket_expiry is not None and self.ticket_expiry < 0:
            raise ValueError("the ticket expiry must not be negative.")
        if self.uuid is not None and len(self.uuid) != 16:
            raise ValueError("uuid must be 16 bytes.")
        if self.password is not None and len(self.password.encode("utf-8")) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"the password must be at most {MAX_PASSWORD_LENGTH} bytes long.")
        return self

    @property
    def image_compression_value(self) -> ImageCompression:
        return IMAGE_COMPRESSION_NAMES[self.image_compression]

    @property
    def jpeg_wan_value(self) -> WanCompression:
        return WAN_COMPRESSION_NAMES[self.jpeg_wan_compression]

    @property
    def zlib_glz_wan_value(self) -> WanCompression:
        return WAN_COMPRESSION_NAMES[self.zlib_glz_wan_compression]

    @property
    def streaming_video_value(self) -> StreamVideo:
        return STREAMING_VIDEO_NAMES[self.streaming_video]

    @classmethod
    def from_qemu_string(cls, text: str, environ: Mapping[str, str] | None = None) -> SpiceOptions:
        """Parse ``key=value,...`` as QEMU's ``-spice`` does."""
        env = os.environ if environ is None else environ
        opts = cls()
        password_file = None
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep:
                raise ValueError(f"option {key!r} needs a value (write {key}=...).")
            if key == "port":
                opts.port = _int(key, value)
            elif key == "addr":
                opts.addr = value
            elif key == "disable-ticketing":
                opts.disable_ticketing = _bool(key, value)
            elif key == "password-file":
                password_file = value
            elif key in ("password", "password-secret"):
                raise ValueError("give the password with password-file= or the "
                                 f"{PASSWORD_ENV} environment variable, not on the command line.")
            elif key == "ticket-expiry":
                opts.ticket_expiry = float(_int(key, value))
            elif key == "image-compression":
                opts.image_compression = value
            elif key == "jpeg-wan-compression":
                opts.jpeg_wan_compression = value
            elif key == "zlib-glz-wan-compression":
                opts.zlib_glz_wan_compression = value
            elif key == "streaming-video":
                opts.streaming_video = value
            elif key == "agent-mouse":
                opts.agent_mouse = _bool(key, value)
            elif key == "name":
                opts.name = value
            elif key == "uuid":
                try:
                    opts.uuid = uuidlib.UUID(value).bytes
                except ValueError:
                    raise ValueError(f"uuid {value!r} is not a UUID.") from None
            else:
                raise ValueError(f"unknown SPICE option {key!r}.")
        if password_file is not None:
            try:
                with open(password_file, encoding="utf-8") as f:
                    opts.password = f.read().rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"cannot read the password file {password_file!r}: "
                                 f"{exc.strerror}.") from None
        elif env.get(PASSWORD_ENV):
            opts.password = env[PASSWORD_ENV]
        return opts.validate()


def _names(table: Mapping[str, object]) -> str:
    return ", ".join(table)


def _int(key: str, value: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise ValueError(f"{key} must be a number, not {value!r}.") from None


def _bool(key: str, value: str) -> bool:
    v = _BOOL.get(value.lower())
    if v is None:
        raise ValueError(f"{key} must be on or off, not {value!r}.")
    return v
