/* The driver's own reference rendering: what each draw type must do to a
 * 32-bit xRGB surface, computed in C on a copy of the pixels, so a test can
 * compare it with the device's UPDATE_AREA readback.  Only what is defined
 * exactly is modelled: integer ROPs, 1:1 copies, constant-alpha blending
 * with pixman's rounding, colour keys, one-pixel axis-aligned lines
 * (endpoint-exclusive), A1 glyphs, clip rectangles. */
#ifndef TESTS_REF_H
#define TESTS_REF_H

#include <stdbool.h>
#include <stdint.h>

#include "qxl/qxl_draw.h"

/* A window [x0, x0 + w) x [y0, y0 + h) of a surface, in surface
 * coordinates; px holds w * h pixels, row by row. */
struct ref_canvas {
    int32_t x0, y0, w, h;
    uint32_t *px;
};

/* A source image already converted to xRGB (w * h pixels). */
struct ref_image {
    uint32_t w, h;
    const uint32_t *px;
};

/* Clip rectangles for the following ref operations (n = 0: none). */
void ref_set_clip(const struct qxl_rect *rects, uint32_t n);

/* result of a ROP descriptor on (input a, dest b): a is the brush or the
 * source, whichever the draw type uses */
uint32_t ref_rop(uint32_t a, uint32_t b, uint16_t ropd, bool a_is_src);

void ref_fill(struct ref_canvas *c, const struct qxl_rect *r, uint32_t color, uint16_t ropd);
void ref_fill_pattern(struct ref_canvas *c, const struct qxl_rect *r, const struct ref_image *pat,
                      int32_t pos_x, int32_t pos_y, uint16_t ropd);
void ref_copy(struct ref_canvas *c, const struct qxl_rect *dst, const struct ref_image *src,
              const struct qxl_rect *src_area, uint16_t ropd);
void ref_opaque(struct ref_canvas *c, const struct qxl_rect *dst, const struct ref_image *src,
                const struct qxl_rect *src_area, uint32_t brush, uint16_t ropd);
void ref_copy_bits(struct ref_canvas *c, const struct qxl_rect *dst, int32_t sx, int32_t sy);
void ref_alpha_blend(struct ref_canvas *c, const struct qxl_rect *dst,
                     const struct ref_image *src, const struct qxl_rect *src_area, uint8_t alpha);
void ref_transparent(struct ref_canvas *c, const struct qxl_rect *dst,
                     const struct ref_image *src, const struct qxl_rect *src_area, uint32_t key);
/* axis-aligned segments only; returns false for anything else */
bool ref_stroke(struct ref_canvas *c, const struct qxl_point *pts, uint32_t n, uint32_t color,
                uint16_t ropd);
void ref_text(struct ref_canvas *c, const struct qxl_font *f, int32_t x, int32_t y,
              const char *s, uint32_t fg, int32_t bg);
void ref_blackness(struct ref_canvas *c, const struct qxl_rect *r);
void ref_whiteness(struct ref_canvas *c, const struct qxl_rect *r);
void ref_invers(struct ref_canvas *c, const struct qxl_rect *r);

/* source formats to xRGB, as the server converts them */
uint32_t ref_from_555(uint16_t v);
uint32_t ref_from_24(const uint8_t *bgr);

#endif
