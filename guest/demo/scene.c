/* The animated area: a ball bouncing over a sunset "photo", each frame a
 * full DRAW_COPY of the area -- what the server's stream detector turns
 * into video. */
#include "lib/alloc.h"
#include "lib/string.h"
#include "demo.h"

#define BALL 36

static uint32_t *photo, *frame;
static uint32_t sw, sh, frames;
static uint32_t ball[BALL * BALL]; /* premultiplied ARGB */

/* a shaded sphere with a soft edge (4x4 supersampled coverage) */
static void make_ball(void)
{
    const int32_t r = BALL / 2;
    for (int y = 0; y < BALL; y++)
        for (int x = 0; x < BALL; x++) {
            int cover = 0;
            for (int sy = 0; sy < 4; sy++)
                for (int sx = 0; sx < 4; sx++) {
                    int32_t dx = 4 * (x - r) + sx * 1 + 0, dy = 4 * (y - r) + sy;
                    cover += dx * dx + dy * dy < 16 * r * r;
                }
            int32_t dx = x - r / 2, dy = y - r / 2; /* highlight up-left */
            int32_t d = dx * dx + dy * dy, lit = 255 - d * 255 / (4 * r * r);
            if (lit < 60)
                lit = 60;
            uint32_t cr = 0xe0 * lit / 255 + (d < 12 ? 40 : 0);
            uint32_t cg = 0x4c * lit / 255 + (d < 12 ? 120 : 0);
            uint32_t cb = 0x50 * lit / 255 + (d < 12 ? 110 : 0);
            uint32_t a = (uint32_t)cover * 255 / 16;
            cr = cr > 255 ? 255 : cr;
            cg = cg > 255 ? 255 : cg;
            cb = cb > 255 ? 255 : cb;
            ball[y * BALL + x] = (a << 24) | ((cr * a / 255) << 16) | ((cg * a / 255) << 8) |
                                 (cb * a / 255);
        }
}

void scene_init(uint32_t w, uint32_t h)
{
    if (w == sw && h == sh && photo)
        return;
    free(photo);
    free(frame);
    sw = w;
    sh = h;
    photo = malloc(w * h * 4);
    frame = malloc(w * h * 4);
    if (!photo || !frame) {
        sw = sh = 0;
        return;
    }
    art_landscape(photo, w, h);
    make_ball();
}

/* position on a path that bounces off the area's edges */
static int32_t bounce(int32_t t, int32_t span)
{
    if (span <= 0)
        return 0;
    int32_t p = t % (2 * span);
    return p < span ? p : 2 * span - p;
}

void scene_frame(uint32_t t_ms)
{
    if (!sw)
        return;
    memcpy(frame, photo, sw * sh * 4);
    int32_t bx = bounce((int32_t)(t_ms * 9 / 100), (int32_t)sw - BALL);
    /* a parabola per bounce across the floor of the picture */
    int32_t period = 900, ph = (int32_t)(t_ms % period);
    int32_t lift = 4 * ph * (period - ph) / period * ((int32_t)sh - BALL - 8) / period;
    int32_t by = (int32_t)sh - BALL - 4 - lift;
    for (int y = 0; y < BALL; y++)
        for (int x = 0; x < BALL; x++) {
            uint32_t s = ball[y * BALL + x], a = s >> 24;
            if (!a)
                continue;
            uint32_t *d = &frame[(by + y) * sw + bx + x];
            uint32_t ia = 255 - a, dv = *d, out = 0;
            for (int sh8 = 0; sh8 < 24; sh8 += 8)
                out |= ((((s >> sh8) & 0xff) + ((dv >> sh8) & 0xff) * ia / 255) & 0xff) << sh8;
            *d = out;
        }
    struct qxl_image *img = qxl_image_bitmap(&qxl, QXL_BITMAP_32BIT, sw, sh, frame, sw * 4, 0, 0,
                                             false);
    if (!img)
        return;
    struct qxl_rect src = qxl_rect_xywh(0, 0, sw, sh);
    qxl_copy(&qxl, 0, &desk.video_area, img, &src, QXL_ROPD_OP_PUT, QXL_SCALE_NEAREST);
    qxl_image_put(img);
    frames++;
}

uint32_t scene_frames(void)
{
    return frames;
}
