"""The inputs channel: keyboard scancodes, lock LEDs, mouse and tablet.

Keys reach :class:`KbdInterface` as PC/AT set-1 bytes.  In server mouse mode
relative motion goes to :class:`MouseInterface`; in client mode absolute
positions go to the agent (VD_AGENT_MOUSE_STATE) when agent-mouse is on and
an agent is attached, else to :class:`TabletInterface`.  Every 4th motion or
position message is answered with MOUSE_MOTION_ACK, which is what keeps the
client from flooding the server.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

from spice.channel import ChannelClient, ChannelStats, PipeItem
from spice.protocol import (
    INPUT_MOTION_ACK_BUNCH,
    KEYBOARD_MODIFIER_CAPS_LOCK,
    KEYBOARD_MODIFIER_NUM_LOCK,
    KEYBOARD_MODIFIER_SCROLL_LOCK,
    ChannelType,
    MouseButton,
    MouseMode,
    MsgCInputs,
    MsgInputs,
)
from spice.wire import Reader

if TYPE_CHECKING:
    from spice.link import LinkedStream
    from spice.server import ClientSession, SpiceServer

log = logging.getLogger(__name__)

RECEIVE_LIMIT = 2048
KEY_MODIFIERS_TTL_MS = 2000
SCAN_CODE_RELEASE = 0x80
SCROLL_LOCK_SCAN_CODE = 0x46
NUM_LOCK_SCAN_CODE = 0x45
CAPS_LOCK_SCAN_CODE = 0x3A
_LOCK_KEYS = (
    (KEYBOARD_MODIFIER_SCROLL_LOCK, SCROLL_LOCK_SCAN_CODE),
    (KEYBOARD_MODIFIER_NUM_LOCK, NUM_LOCK_SCAN_CODE),
    (KEYBOARD_MODIFIER_CAPS_LOCK, CAPS_LOCK_SCAN_CODE),
)
_U16 = struct.Struct("<H")


def _lock_flag(scancode: int) -> int:
    code = scancode & ~SCAN_CODE_RELEASE
    for flag, lock_code in _LOCK_KEYS:
        if code == lock_code:
            return flag
    return 0


class InputsState:
    """Keyboard state shared by every inputs client of the server (held keys
    for release on disconnect, lock LED tracking)."""

    def __init__(self, server: SpiceServer) -> None:
        self.server = server
        self.modifiers = 0  # lock LEDs as the guest last reported them
        self.modifiers_pressed = 0
        self.keys = [False] * 128
        self.keys_ext = [False] * 128
        self._ext = 0
        self.agent_buttons = 0
        self.mouse_x = 0
        self.mouse_y = 0
        self.display_id = 0
        self._timer = server.core.timer_add(self._send_modifiers)

    def push_scan(self, scan: int) -> None:
        kbd = self.server.kbd
        if kbd is None:
            return
        if 0xE0 <= scan <= 0xE2:
            self._ext = scan
        else:
            if self._ext in (0, 0xE0):
                table = self.keys_ext if self._ext else self.keys
                table[scan & 0x7F] = not scan & SCAN_CODE_RELEASE
            self._ext = 0
        kbd.push_scan_freg(scan)

    def sync_locks(self, scan: int) -> None:
        flag = _lock_flag(scan)
        if scan & SCAN_CODE_RELEASE:
            self.modifiers_pressed &= ~flag
        elif flag and not self.modifiers_pressed & flag:
            self.modifiers ^= flag
            self.modifiers_pressed |= flag
            self.arm_modifiers_watch()

    def arm_modifiers_watch(self) -> None:
        self.server.core.timer_start(self._timer, KEY_MODIFIERS_TTL_MS)

    def _send_modifiers(self) -> None:
        try:
            self.server.push_keyboard_modifiers(self.modifiers)
        except Exception:
            log.exception("inputs: sending the lock state failed")

    def release_keys(self) -> None:
        """A departing client must not leave keys held in the guest."""
        for i, down in enumerate(self.keys):
            if down:
                self.keys[i] = False
                self.push_scan(i | SCAN_CODE_RELEASE)
        for i, down in enumerate(self.keys_ext):
            if down:
                self.keys_ext[i] = False
                self.push_scan(0xE0)
                self.push_scan(i | SCAN_CODE_RELEASE)

    def close(self) -> None:
        self.server.core.timer_cancel(self._timer)
        self.server.core.timer_remove(self._timer)


class _Item(PipeItem):
    __slots__ = ("msg_type", "modifiers")

    def __init__(self, msg_type: int, modifiers: int = 0) -> None:
        self.msg_type = msg_type
        self.modifiers = modifiers


class InputsChannelClient(ChannelClient):
    channel_type = ChannelType.INPUTS
    max_message_size = RECEIVE_LIMIT

    def __init__(self, session: ClientSession, linked: LinkedStream,
                 stats: ChannelStats) -> None:
        server = session.server
        super().__init__(server.core, linked, on_disconnect=session.channel_disconnected,
                         stats=stats)
        self.server = server
        self.state = server.inputs_state
        self.motion_count = 0
        leds = server.kbd.get_leds() if server.kbd is not None else 0
        self.pipe_add(_Item(MsgInputs.INIT, leds))
        self.push()

    def push_modifiers(self, modifiers: int) -> None:
        self.pipe_add(_Item(MsgInputs.KEY_MODIFIERS, modifiers))
        self.push()

    def send_item(self, item: PipeItem) -> None:
        assert isinstance(item, _Item)
        if item.msg_type == MsgInputs.MOUSE_MOTION_ACK:
            self.send_message(item.msg_type, None)
        else:
            self.send_message(item.msg_type, _U16.pack(item.modifiers))

    def _on_motion(self) -> None:
        self.motion_count += 1
        if self.motion_count % INPUT_MOTION_ACK_BUNCH == 0:
            self.pipe_add(_Item(MsgInputs.MOUSE_MOTION_ACK))
            self.motion_count = 0

    def handle_message(self, msg_type: int, r: Reader) -> bool:
        srv = self.server
        st = self.state
        if msg_type in (MsgCInputs.KEY_DOWN, MsgCInputs.KEY_UP):
            code = r.u32()
            if msg_type == MsgCInputs.KEY_DOWN:
                st.sync_locks(code & 0xFF)
            for i in range(4):
                byte = (code >> (8 * i)) & 0xFF
                if byte == 0:
                    break
                st.push_scan(byte)
                st.sync_locks(byte)
        elif msg_type == MsgCInputs.KEY_SCANCODE:
            for byte in r.rest():
                st.push_scan(byte)
                st.sync_locks(byte)
        elif msg_type == MsgCInputs.KEY_MODIFIERS:
            wanted = r.u16()
            if srv.kbd is not None:
                for flag, code in _LOCK_KEYS:
                    if (not st.modifiers_pressed & flag
                            and (wanted & flag) != (st.modifiers & flag)):
                        st.push_scan(code)
                        st.push_scan(code | SCAN_CODE_RELEASE)
                        st.modifiers ^= flag
                st.arm_modifiers_watch()
        elif msg_type == MsgCInputs.MOUSE_MOTION:
            dx, dy, buttons = r.i32(), r.i32(), r.u16()
            self._on_motion()
            if srv.mouse is not None and srv.mouse_mode == MouseMode.SERVER:
                srv.mouse.motion(dx, dy, 0, buttons)
        elif msg_type == MsgCInputs.MOUSE_POSITION:
            x, y, buttons, display_id = r.u32(), r.u32(), r.u16(), r.u8()
            self._on_motion()
            if srv.mouse_mode != MouseMode.CLIENT:
                pass
            elif srv.agent_mouse_active():
                st.mouse_x, st.mouse_y, st.display_id = x, y, display_id
                st.agent_buttons = (buttons << 1) & 0xFFFFFFFF
                srv.agent_mouse_state(x, y, st.agent_buttons, display_id)
            elif srv.tablet is not None:
                srv.tablet.position(x, y, buttons)
        elif msg_type in (MsgCInputs.MOUSE_PRESS, MsgCInputs.MOUSE_RELEASE):
            button, buttons = r.u8(), r.u16()
            self._button(msg_type == MsgCInputs.MOUSE_PRESS, button, buttons)
        else:
            return False
        self.push()
        return True

    def _button(self, press: bool, button: int, buttons: int) -> None:
        srv = self.server
        st = self.state
        dz = 0
        if press and button == MouseButton.UP:
            dz = -1
        elif press and button == MouseButton.DOWN:
            dz = 1
        if srv.mouse_mode == MouseMode.CLIENT:
            if srv.agent_mouse_active():
                st.agent_buttons = (buttons << 1) & 0xFFFFFFFF
                if dz == -1:
                    st.agent_buttons |= 1 << 4  # VD_AGENT_UBUTTON_MASK
                elif dz == 1:
                    st.agent_buttons |= 1 << 5  # VD_AGENT_DBUTTON_MASK
                srv.agent_mouse_state(st.mouse_x, st.mouse_y, st.agent_buttons, st.display_id)
            elif srv.tablet is not None:
                if press:
                    srv.tablet.wheel(dz, buttons)
                else:
                    srv.tablet.buttons(buttons)
        elif srv.mouse is not None:
            if press:
                srv.mouse.motion(0, 0, dz, buttons)
            else:
                srv.mouse.buttons(buttons)

    def on_disconnect(self) -> None:
        self.state.release_keys()
