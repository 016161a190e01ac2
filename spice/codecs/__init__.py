"""Image codecs of the SPICE server.

Each codec turns a guest bitmap (a numpy view of its bytes, its size, stride,
SPICE bitmap format and row order) into the bytes of one SPICE image payload,
exactly as a SPICE client decodes it; each also has a reference decoder used
by the tests.  Heavy loops are numba kernels that release the GIL.
"""

# QUIC (lossless photographic) and the photo-likeness classifier.
from spice.codecs.graduality import BITMAP_GRADUAL_HIGH as BITMAP_GRADUAL_HIGH
from spice.codecs.graduality import BITMAP_GRADUAL_LOW as BITMAP_GRADUAL_LOW
from spice.codecs.graduality import BITMAP_GRADUAL_MEDIUM as BITMAP_GRADUAL_MEDIUM
from spice.codecs.graduality import bitmap_graduality as bitmap_graduality
from spice.codecs.quic import QuicImage as QuicImage
from spice.codecs.quic import quic_decode as quic_decode
from spice.codecs.quic import quic_encode as quic_encode

# isort: split
# JPEG (still images, MJPEG frames) and JPEG_ALPHA.
from spice.codecs.jpeg import JpegAlpha as JpegAlpha
from spice.codecs.jpeg import jpeg_alpha_encode as jpeg_alpha_encode
from spice.codecs.jpeg import jpeg_encode as jpeg_encode
from spice.codecs.jpeg import jpeg_encode_bitmap as jpeg_encode_bitmap
from spice.codecs.jpeg import mjpeg_encode_frame as mjpeg_encode_frame

# isort: split
# LZ, GLZ (+ zlib wrapping) and LZ4, with their reference decoders.
from spice.codecs.glz import GlzDictionary as GlzDictionary
from spice.codecs.glz import glz_encode as glz_encode
from spice.codecs.glz import zlib_glz_encode as zlib_glz_encode
from spice.codecs.glz_client import GlzDecoderWindow as GlzDecoderWindow
from spice.codecs.glz_client import glz_decode as glz_decode
from spice.codecs.glz_client import zlib_glz_decode as zlib_glz_decode
from spice.codecs.lz import lz_decode as lz_decode
from spice.codecs.lz import lz_encode as lz_encode
from spice.codecs.lz import lz_encode_alpha as lz_encode_alpha
from spice.codecs.lz4img import lz4_decode as lz4_decode
from spice.codecs.lz4img import lz4_encode as lz4_encode
