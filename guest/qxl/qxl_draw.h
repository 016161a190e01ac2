/* Drawing through QXL_CMD_DRAW: one function per draw type, bitmaps and
 * surfaces as sources, clip rectangles, text from the generated A1 fonts,
 * and cursor commands.
 *
 * Colours are 0xRRGGBB (32-bit surfaces).  Every call builds a drawable in
 * device memory, pushes it and returns a status; the drawable and what it
 * references go back to the allocator when the device releases it.
 * Images are reference-counted: pass one to as many draws as you like,
 * then qxl_image_put() it.
 */
#ifndef QXL_DRAW_H
#define QXL_DRAW_H

#include "qxl/qxl.h"
#include "qxl/qxl_font.h"

/* -- images (qxl_image.c) -- */

/* A bitmap image copied from `pixels` (rows `src_stride` bytes apart, top
 * row first).  fmt is a QXL_BITMAP_* format; `palette` (ents 0xRRGGBB) is
 * needed for 1/4/8-bit formats.  `cache` lets the server and client cache
 * it under a fresh id.  NULL when out of memory. */
struct qxl_image *qxl_image_bitmap(struct qxl_device *q, uint8_t fmt, uint32_t w, uint32_t h,
                                   const void *pixels, uint32_t src_stride,
                                   const uint32_t *palette, uint16_t n_palette, bool cache);
/* An uninitialised 32-bit image whose rows the caller fills in place
 * (qxl_image_pixels); stride w * 4. */
struct qxl_image *qxl_image_alloc32(struct qxl_device *q, uint32_t w, uint32_t h, bool cache);
uint8_t *qxl_image_pixels(struct qxl_image *img);
/* A surface used as a source image. */
struct qxl_image *qxl_image_surface(struct qxl_device *q, uint32_t surface_id);
/* Drop the caller's reference. */
void qxl_image_put(struct qxl_image *img);

/* -- clip (applies to every following draw until cleared) -- */

void qxl_set_clip(struct qxl_device *q, const struct qxl_rect *rects, uint32_t n);
static inline void qxl_clear_clip(struct qxl_device *q) { qxl_set_clip(q, 0, 0); }

/* -- draw types (qxl_draw.c) -- */

/* The common part: a zeroed drawable for surface `sid` with bbox, effect,
 * no source surfaces and the current clip; NULL if the surface is not live,
 * the box is empty or memory ran out.  Fill in d->u, then submit (which
 * pushes it, or frees it on failure). */
struct qxl_drawable *qxl_drawable_new(struct qxl_device *q, uint32_t sid, uint8_t type,
                                      const struct qxl_rect *bbox, uint8_t effect);
int qxl_drawable_submit(struct qxl_device *q, struct qxl_drawable *d);

int qxl_fill(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r, uint32_t color,
             uint16_t rop);
int qxl_fill_pattern(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r,
                     struct qxl_image *pat, int32_t pos_x, int32_t pos_y, uint16_t rop);
int qxl_copy(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
             struct qxl_image *src, const struct qxl_rect *src_area, uint16_t rop,
             uint8_t scale_mode);
int qxl_opaque(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
               struct qxl_image *src, const struct qxl_rect *src_area, uint32_t brush_color,
               uint16_t rop);
int qxl_blend(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
              struct qxl_image *src, const struct qxl_rect *src_area, uint16_t rop);
int qxl_copy_bits(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
                  int32_t src_x, int32_t src_y);
int qxl_alpha_blend(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
                    struct qxl_image *src, const struct qxl_rect *src_area, uint8_t alpha,
                    uint16_t alpha_flags);
int qxl_transparent(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
                    struct qxl_image *src, const struct qxl_rect *src_area, uint32_t key);
/* A one-pixel polyline through n points (integers), endpoint-exclusive
 * like Windows cosmetic pens. */
int qxl_stroke(struct qxl_device *q, uint32_t sid, const struct qxl_point *pts, uint32_t n,
               uint32_t color, uint16_t rop);
int qxl_blackness(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r);
int qxl_whiteness(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r);
int qxl_invers(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r);

/* -- text (qxl_text.c): QXL_DRAW_TEXT with one A1 raster glyph per
 * character; (x, y) is the pen position on the baseline.  bg < 0: no
 * background, else the glyph boxes' union is filled with bg first. -- */

extern const struct qxl_font *const qxl_font_small; /* 14 px */
extern const struct qxl_font *const qxl_font_large; /* 24 px */
int qxl_text(struct qxl_device *q, uint32_t sid, const struct qxl_font *f, int32_t x,
             int32_t y, const char *s, uint32_t fg, int32_t bg);
/* The box text would cover, from the glyph rasters. */
struct qxl_rect qxl_text_box(const struct qxl_font *f, int32_t x, int32_t y, const char *s);

/* -- cursor (qxl_cursor.c) -- */

/* ARGB (premultiplied, 32-bit) cursor shape, w*h pixels, top row first. */
int qxl_cursor_set_alpha(struct qxl_device *q, const uint32_t *argb, uint16_t w, uint16_t h,
                         uint16_t hot_x, uint16_t hot_y, int16_t x, int16_t y);
/* Monochrome cursor: AND mask then XOR mask, each h rows of ceil(w/8) bytes. */
int qxl_cursor_set_mono(struct qxl_device *q, const uint8_t *and_xor, uint16_t w, uint16_t h,
                        uint16_t hot_x, uint16_t hot_y, int16_t x, int16_t y);
int qxl_cursor_move(struct qxl_device *q, int16_t x, int16_t y);
int qxl_cursor_hide(struct qxl_device *q);

#endif
