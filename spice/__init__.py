"""The SPICE server library (like libspice-server).  It reaches its host only
through :mod:`spice.interfaces` and never imports ``vm`` or ``devices``.

Where things are, in the order a connection meets them:

- :mod:`spice.server` -- :class:`~spice.server.SpiceServer`: listening
  socket on the host's core, link dispatch, client sessions, mouse mode;
  :mod:`spice.options` -- :class:`~spice.options.SpiceOptions`;
- :mod:`spice.link` -- the link stage (RSA-1024 key, OAEP ticket, caps);
- :mod:`spice.wire`, :mod:`spice.protocol` -- marshalling and constants;
- :mod:`spice.channel` -- what every channel client does (socket, pipe,
  ACK window, pings); :mod:`spice.main_channel`,
  :mod:`spice.inputs_channel`, :mod:`spice.agent` on the core thread;
- :mod:`spice.worker` and :mod:`spice.dispatcher` -- one red worker thread
  per QXL device, and the ``QXLWorker`` handle the device calls;
- :mod:`spice.display_channel`, :mod:`spice.display_client`,
  :mod:`spice.display_marshal`, :mod:`spice.display_tree`,
  :mod:`spice.surfaces`, :mod:`spice.image_cache` -- the display pipeline;
  :mod:`spice.current_tree` (pending drawables, occlusion culling) on
  :mod:`spice.region` (region algebra); :mod:`spice.image_encoders` (which
  codec an image goes out with) and :mod:`spice.display_lossy` (lossy
  areas while JPEG is on); :mod:`spice.video_stream` and
  :mod:`spice.mjpeg_rate` (video streams); :mod:`spice.cursor_channel` --
  the cursor;
- :mod:`spice.canvas` (software rendering) and :mod:`spice.codecs` (image
  compression);
- :mod:`spice.eventloop` -- a selector loop implementing ``CoreInterface``
  (the worker's loop, and a host core for programs without one).
"""
