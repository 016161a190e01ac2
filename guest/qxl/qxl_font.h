/* Bitmap fonts for QXL_DRAW_TEXT (A1 rasters).  The tables are generated at
 * build time (gen_font.py -> build/gen/font.h); include "font.h" for
 * qxl_font_sans14 and qxl_font_sans24. */
#ifndef QXL_FONT_H
#define QXL_FONT_H

#include <stdint.h>

struct qxl_glyph {
    uint8_t width, height;
    int8_t left;      /* raster's left edge from the pen position */
    int8_t top;       /* raster's top row above the baseline */
    uint8_t advance;  /* pen movement */
    uint32_t offset;  /* first row in the font's bit array */
};

struct qxl_font {
    uint8_t first, last;  /* character range */
    int8_t ascent, descent;
    uint8_t height;       /* line height */
    const struct qxl_glyph *glyphs;
    const uint8_t *bits;  /* rows top first, MSB leftmost, byte-padded */
};

/* The glyph of `c` (the first glyph, a space, when out of range). */
static inline const struct qxl_glyph *qxl_font_glyph(const struct qxl_font *f, char c)
{
    unsigned char u = (unsigned char)c;
    if (u < f->first || u > f->last)
        u = f->first;
    return &f->glyphs[u - f->first];
}

/* Width in pixels of the first `n` characters of `s` (n < 0: all). */
int qxl_font_text_width(const struct qxl_font *f, const char *s, int n);

#endif
