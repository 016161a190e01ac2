"""SpiceOptions parsing, the .vv connection file, and the ticket staying secret."""

from __future__ import annotations

import logging
import os
import stat

import pytest
from spice_client import Session
from spice_harness import Harness

from spice.options import SpiceOptions


def test_defaults():
    o = SpiceOptions()
    assert (o.addr, o.port, o.password, o.disable_ticketing) == ("127.0.0.1", 5900, None, False)
    assert (o.image_compression, o.jpeg_wan_compression, o.zlib_glz_wan_compression,
            o.streaming_video, o.agent_mouse) == ("auto_glz", "auto", "auto", "filter", True)


def test_qemu_string(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("hunter2\n")
    o = SpiceOptions.from_qemu_string(
        f"port=5930,addr=0.0.0.0,password-file={pw},image-compression=quic,"
        "jpeg-wan-compression=never,zlib-glz-wan-compression=always,streaming-video=filter,"
        "agent-mouse=off,name=vm1,uuid=12345678-1234-5678-1234-567812345678,ticket-expiry=60",
        environ={})
    assert (o.port, o.addr, o.password, o.image_compression) == (5930, "0.0.0.0", "hunter2",
                                                                 "quic")
    assert (o.jpeg_wan_compression, o.zlib_glz_wan_compression, o.streaming_video) == (
        "never", "always", "filter")
    assert (o.agent_mouse, o.name, o.ticket_expiry) == (False, "vm1", 60.0)
    assert o.uuid == bytes.fromhex("12345678123456781234567812345678")
    assert SpiceOptions.from_qemu_string("disable-ticketing=on", environ={}).disable_ticketing


def test_password_from_environment():
    o = SpiceOptions.from_qemu_string("port=1", environ={"SPICE_PASSWORD": "envpw"})
    assert o.password == "envpw"
    assert "envpw" not in repr(o)


@pytest.mark.parametrize("text,fragment", [
    ("password=secret", "not on the command line"),
    ("port=abc", "port must be a number"),
    ("port=70000", "port must be a number from 0 to 65535"),
    ("image-compression=zip", "image-compression must be one of"),
    ("streaming-video=sometimes", "streaming-video must be one of"),
    ("jpeg-wan-compression=maybe", "jpeg-wan-compression must be one of"),
    ("disable-ticketing=perhaps", "disable-ticketing must be on or off"),
    ("frobnicate=1", "unknown SPICE option"),
    ("port", "needs a value"),
    ("password-file=/nonexistent/pw", "cannot read the password file"),
    ("uuid=xyz", "is not a UUID"),
])
def test_bad_option_strings(text, fragment):
    with pytest.raises(ValueError) as exc:
        SpiceOptions.from_qemu_string(text, environ={})
    msg = str(exc.value)
    assert fragment in msg and msg.endswith(".") and "\n" not in msg


def test_vv_file_and_uri(tmp_path, caplog):
    secret = "vv-ticket-42"
    caplog.set_level(logging.DEBUG)
    with Harness(SpiceOptions(port=0, password=secret, name="guest")) as h:
        path = h.server.write_vv_file(tmp_path / "conn.vv")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        text = open(path).read()
        assert text.startswith("[virt-viewer]\ntype=spice\n")
        assert f"host=127.0.0.1\nport={h.port}\npassword={secret}\n" in text
        assert h.server.uri() == f"spice://127.0.0.1:{h.port}"
        s = Session("127.0.0.1", h.port, password=secret)
        s.close()
    # the ticket never reaches a log line
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert caplog.records  # the server did log (listening, links)
