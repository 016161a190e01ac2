"""Image codecs of the SPICE server.

Each codec turns a guest bitmap (a numpy view of its bytes, its size, stride,
SPICE bitmap format and row order) into the bytes of one SPICE image payload,
exactly as a SPICE client decodes it; each also has a reference decoder used
by the tests.  Heavy loops are numba kernels that release the GIL.
"""
