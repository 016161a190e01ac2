"""``-device``-style option strings for the QXL device, with QEMU's names:
``qxl-vga,ram_size_mb=64,vram_size_mb=64,vgamem_mb=16,revision=5``."""

from __future__ import annotations

KINDS = ("qxl-vga", "qxl")
INT_OPTIONS = ("ram_size_mb", "vram_size_mb", "vram64_size_mb", "vgamem_mb", "revision",
               "surfaces", "guestdebug", "max_outputs")


def parse_device_options(spec: str) -> tuple[str, dict[str, int | bool]]:
    """``(kind, kwargs)`` for :class:`devices.qxl.QXLDevice`; ``kwargs``
    includes ``vga``.  Raises ValueError (one sentence) on a bad string."""
    parts = [p.strip() for p in spec.split(",")]
    kind = parts[0]
    if kind not in KINDS:
        raise ValueError(f"unknown display device {kind!r}: expected qxl-vga or qxl")
    kwargs: dict[str, int | bool] = {"vga": kind == "qxl-vga"}
    for part in parts[1:]:
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"{kind} option {part!r} has no value (expected name=value)")
        if name not in INT_OPTIONS:
            raise ValueError(f"{kind} has no option {name!r} (known: {', '.join(INT_OPTIONS)})")
        if name in kwargs:
            raise ValueError(f"{kind} option {name!r} is given twice")
        try:
            number = int(value.strip(), 0)
        except ValueError:
            raise ValueError(f"{kind} option {name}={value!r} is not an integer") from None
        if number < 0:
            raise ValueError(f"{kind} option {name}={number} must not be negative")
        kwargs[name] = number
    revision = kwargs.get("revision", 5)
    if not 1 <= int(revision) <= 5:
        raise ValueError(f"{kind} revision {revision} is not supported (1 to 5)")
    return kind, kwargs
