"""The QXL paravirtual GPU (``qxl-vga`` / ``qxl``) with QEMU 7.2's semantics.

Public API: :class:`QXLDevice` (a PCI device implementing
``spice.interfaces.QXLInterface``), :func:`parse_device_options` for the
command line, and :class:`QXLMode`.
"""

from devices.qxl.device import QXLDevice
from devices.qxl.layout import QXLMode
from devices.qxl.options import parse_device_options

__all__ = ["QXLDevice", "QXLMode", "parse_device_options"]
