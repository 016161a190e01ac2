/* Suite draw: every draw type, followed by UPDATE_AREA and a pixel
 * readback compared with the reference rendering of the same operation on
 * the pixels read before it. */
#include "lib/alloc.h"
#include "lib/string.h"
#include "suite.h"

#define RX 96
#define RY 64
#define RW 96
#define RH 64

static const struct qxl_rect region = {RY, RX, RY + RH, RX + RW};
static struct ref_canvas cv;
static uint32_t *bg_px;

/* Paint the region with a seeded gradient (one COPY), read it back as the
 * starting point of the reference. */
static bool prepare(const char *name, uint32_t seed)
{
    ref_set_clip(0, 0);
    qxl_clear_clip(&qxl);
    t_pattern(bg_px, RW, RH, seed);
    struct qxl_image *img = qxl_image_bitmap(&qxl, QXL_BITMAP_32BIT, RW, RH, bg_px, RW * 4, 0,
                                             0, false);
    struct qxl_rect src = qxl_rect_xywh(0, 0, RW, RH);
    if (!img || qxl_copy(&qxl, 0, &region, img, &src, QXL_ROPD_OP_PUT, QXL_SCALE_NEAREST))
        return false;
    qxl_image_put(img);
    if (!t_read(0, &region, cv.px))
        return false;
    if (memcmp(cv.px, bg_px, RW * RH * 4)) {
        diag("%s: the background copy did not read back", name);
        return false;
    }
    if (opt_dump)
        t_dump(name, "before", 0, &region, cv.px);
    return true;
}

static bool check(const char *name)
{
    /* a reference that leaves the background alone would let a draw the
     * device ignored pass: every test here must change some pixel */
    if (!memcmp(cv.px, bg_px, RW * RH * 4)) {
        diag("%s: the reference rendering changes nothing; the test would prove nothing",
             name);
        return false;
    }
    return t_check(name, 0, &region, cv.px);
}

/* a source image in several formats, with its xRGB view for the reference */
struct src {
    struct qxl_image *img;
    struct ref_image ref;
    uint32_t px[48 * 40];
};

static struct src *make_src(uint8_t fmt, uint32_t w, uint32_t h, uint32_t seed)
{
    static struct src s;
    static uint8_t raw[48 * 40 * 4];
    static uint32_t palette[256];
    if (w * h > 48 * 40)
        return 0;
    t_pattern(s.px, w, h, seed);
    uint32_t stride = 0;
    uint16_t npal = 0;
    for (uint32_t i = 0; i < w * h; i++) {
        uint32_t v = s.px[i];
        switch (fmt) {
        case QXL_BITMAP_32BIT:
            memcpy(raw + i * 4, &v, 4);
            stride = w * 4;
            break;
        case QXL_BITMAP_24BIT:
            raw[i * 3] = v;
            raw[i * 3 + 1] = v >> 8;
            raw[i * 3 + 2] = v >> 16;
            s.px[i] = ref_from_24(raw + i * 3);
            stride = w * 3;
            break;
        case QXL_BITMAP_16BIT: {
            uint16_t p = ((v >> 9) & 0x7c00) | ((v >> 6) & 0x03e0) | ((v >> 3) & 0x1f);
            memcpy(raw + i * 2, &p, 2);
            s.px[i] = ref_from_555(p);
            stride = w * 2;
            break;
        }
        case QXL_BITMAP_8BIT: {
            uint8_t idx = (uint8_t)((i * 7 + seed) % 200);
            raw[i] = idx;
            stride = w;
            npal = 200;
            break;
        }
        }
    }
    if (fmt == QXL_BITMAP_8BIT) {
        for (int k = 0; k < 200; k++)
            palette[k] = ((k * 53u) & 0xff) << 16 | ((k * 101u) & 0xff) << 8 | ((255 - k) & 0xff);
        for (uint32_t i = 0; i < w * h; i++)
            s.px[i] = palette[raw[i]];
    }
    s.img = qxl_image_bitmap(&qxl, fmt, w, h, raw, stride, npal ? palette : 0, npal, false);
    s.ref = (struct ref_image){w, h, s.px};
    return s.img ? &s : 0;
}

static bool copy_format(const char *name, uint8_t fmt, uint32_t seed)
{
    if (!prepare(name, seed))
        return false;
    struct src *s = make_src(fmt, 40, 30, seed + 1);
    if (!s)
        return false;
    struct qxl_rect dst = qxl_rect_xywh(RX + 13, RY + 9, 37, 27);
    struct qxl_rect area = qxl_rect_xywh(2, 1, 37, 27);
    ref_copy(&cv, &dst, &s->ref, &area, QXL_ROPD_OP_PUT);
    int rc = qxl_copy(&qxl, 0, &dst, s->img, &area, QXL_ROPD_OP_PUT, QXL_SCALE_NEAREST);
    qxl_image_put(s->img);
    return rc == QXL_OK && check(name);
}

static bool fill_rop(const char *name, uint16_t rop, uint32_t color, uint32_t seed)
{
    if (!prepare(name, seed))
        return false;
    struct qxl_rect r = qxl_rect_xywh(RX + 5, RY + 7, 60, 41);
    ref_fill(&cv, &r, color, rop);
    return qxl_fill(&qxl, 0, &r, color, rop) == QXL_OK && check(name);
}

static bool with_src(const char *name, uint32_t seed, int kind, uint16_t rop, uint32_t arg)
{
    if (!prepare(name, seed))
        return false;
    struct src *s = make_src(QXL_BITMAP_32BIT, 48, 40, seed + 3);
    if (!s)
        return false;
    struct qxl_rect dst = qxl_rect_xywh(RX + 20, RY + 11, 44, 35);
    struct qxl_rect area = qxl_rect_xywh(3, 4, 44, 35);
    int rc = QXL_EINVAL;
    switch (kind) {
    case 0:
        ref_opaque(&cv, &dst, &s->ref, &area, arg, rop);
        rc = qxl_opaque(&qxl, 0, &dst, s->img, &area, arg, rop);
        break;
    case 1:
        ref_copy(&cv, &dst, &s->ref, &area, rop);
        rc = qxl_blend(&qxl, 0, &dst, s->img, &area, rop);
        break;
    case 2:
        ref_alpha_blend(&cv, &dst, &s->ref, &area, (uint8_t)arg);
        rc = qxl_alpha_blend(&qxl, 0, &dst, s->img, &area, (uint8_t)arg, 0);
        break;
    case 3: {
        /* make a band of the source the key colour */
        uint32_t key = s->px[10 * 48 + 10];
        for (uint32_t i = 0; i < 48 * 40; i++)
            if ((i / 48) % 7 == 2 || (i % 48) % 9 == 4)
                s->px[i] = key;
        qxl_image_put(s->img);
        s->img = qxl_image_bitmap(&qxl, QXL_BITMAP_32BIT, 48, 40, s->px, 48 * 4, 0, 0, false);
        if (!s->img)
            return false;
        ref_transparent(&cv, &dst, &s->ref, &area, key);
        rc = qxl_transparent(&qxl, 0, &dst, s->img, &area, key);
        break;
    }
    case 4:
        ref_copy(&cv, &dst, &s->ref, &area, rop);
        rc = qxl_copy(&qxl, 0, &dst, s->img, &area, rop, QXL_SCALE_NEAREST);
        break;
    }
    qxl_image_put(s->img);
    return rc == QXL_OK && check(name);
}

static bool pattern_fill(const char *name, uint32_t seed)
{
    if (!prepare(name, seed))
        return false;
    uint32_t tile[8 * 6];
    t_pattern(tile, 8, 6, seed + 5);
    struct qxl_image *pat = qxl_image_bitmap(&qxl, QXL_BITMAP_32BIT, 8, 6, tile, 32, 0, 0, false);
    if (!pat)
        return false;
    struct ref_image ref = {8, 6, tile};
    struct qxl_rect r = qxl_rect_xywh(RX + 3, RY + 2, 71, 53);
    ref_fill_pattern(&cv, &r, &ref, RX + 3 + 5, RY + 2 + 2, QXL_ROPD_OP_PUT);
    int rc = qxl_fill_pattern(&qxl, 0, &r, pat, RX + 3 + 5, RY + 2 + 2, QXL_ROPD_OP_PUT);
    qxl_image_put(pat);
    return rc == QXL_OK && check(name);
}

static bool copy_bits(const char *name, uint32_t seed, int dx, int dy)
{
    if (!prepare(name, seed))
        return false;
    /* move a 60x40 block by (dx, dy): the areas overlap */
    struct qxl_rect dst = qxl_rect_xywh(RX + 10 + dx, RY + 10 + dy, 60, 40);
    ref_copy_bits(&cv, &dst, RX + 10, RY + 10);
    return qxl_copy_bits(&qxl, 0, &dst, RX + 10, RY + 10) == QXL_OK && check(name);
}

static bool stroke(const char *name, uint32_t seed)
{
    if (!prepare(name, seed))
        return false;
    const struct qxl_point pts[] = {{RX + 4, RY + 4}, {RX + 80, RY + 4}, {RX + 80, RY + 50},
                                    {RX + 20, RY + 50}, {RX + 20, RY + 20}, {RX + 60, RY + 20}};
    uint32_t n = sizeof(pts) / sizeof(pts[0]);
    if (!ref_stroke(&cv, pts, n, 0xffee00, QXL_ROPD_OP_PUT))
        return false; /* the reference only models axis-aligned segments */
    return qxl_stroke(&qxl, 0, pts, n, 0xffee00, QXL_ROPD_OP_PUT) == QXL_OK && check(name);
}

static bool text(const char *name, uint32_t seed, const struct qxl_font *f, int32_t bg)
{
    if (!prepare(name, seed))
        return false;
    const char *s = bg < 0 ? "QXL gy!" : "A1 text";
    ref_text(&cv, f, RX + 4, RY + 40, s, 0x102030, bg);
    return qxl_text(&qxl, 0, f, RX + 4, RY + 40, s, 0x102030, bg) == QXL_OK && check(name);
}

static bool simple(const char *name, uint32_t seed, int which)
{
    if (!prepare(name, seed))
        return false;
    struct qxl_rect r = qxl_rect_xywh(RX + 17, RY + 5, 50, 33);
    int rc;
    if (which == 0) {
        ref_blackness(&cv, &r);
        rc = qxl_blackness(&qxl, 0, &r);
    } else if (which == 1) {
        ref_whiteness(&cv, &r);
        rc = qxl_whiteness(&qxl, 0, &r);
    } else {
        ref_invers(&cv, &r);
        rc = qxl_invers(&qxl, 0, &r);
    }
    return rc == QXL_OK && check(name);
}

static bool clipped(const char *name, uint32_t seed, bool copy)
{
    if (!prepare(name, seed))
        return false;
    static const struct qxl_rect clip[3] = {{RY + 2, RX + 2, RY + 20, RX + 30},
                                            {RY + 25, RX + 40, RY + 60, RX + 50},
                                            {RY + 10, RX + 60, RY + 12, RX + 95}};
    qxl_set_clip(&qxl, clip, 3);
    ref_set_clip(clip, 3);
    struct qxl_rect all = region;
    int rc;
    if (!copy) {
        ref_fill(&cv, &all, 0x3377ff, QXL_ROPD_OP_PUT);
        rc = qxl_fill(&qxl, 0, &all, 0x3377ff, QXL_ROPD_OP_PUT);
    } else {
        struct src *s = make_src(QXL_BITMAP_32BIT, 48, 40, seed + 9);
        struct qxl_rect dst = qxl_rect_xywh(RX + 1, RY + 1, 48, 40);
        struct qxl_rect area = qxl_rect_xywh(0, 0, 48, 40);
        ref_copy(&cv, &dst, &s->ref, &area, QXL_ROPD_OP_PUT);
        rc = qxl_copy(&qxl, 0, &dst, s->img, &area, QXL_ROPD_OP_PUT, QXL_SCALE_NEAREST);
        qxl_image_put(s->img);
        /* the same source again, shifted, through the same clip */
        s = make_src(QXL_BITMAP_32BIT, 48, 40, seed + 10);
        dst = qxl_rect_xywh(RX + 45, RY + 20, 48, 40);
        ref_copy(&cv, &dst, &s->ref, &area, QXL_ROPD_OP_PUT);
        if (rc == QXL_OK)
            rc = qxl_copy(&qxl, 0, &dst, s->img, &area, QXL_ROPD_OP_PUT, QXL_SCALE_NEAREST);
        qxl_image_put(s->img);
    }
    qxl_clear_clip(&qxl);
    ref_set_clip(0, 0);
    return rc == QXL_OK && check(name);
}

static void run_draw(void)
{
    if (!t_ready())
        return;
    cv = (struct ref_canvas){RX, RY, RW, RH, malloc(RW * RH * 4)};
    bg_px = malloc(RW * RH * 4);
    if (!cv.px || !bg_px)
        return;
    t_ok(fill_rop("fill-solid", QXL_ROPD_OP_PUT, 0x336699, 1), "draw: FILL solid brush, PUT");
    t_ok(fill_rop("fill-xor", QXL_ROPD_OP_XOR, 0x5a5aa5, 2), "draw: FILL solid brush, XOR");
    t_ok(fill_rop("fill-and-inv", QXL_ROPD_OP_AND | QXL_ROPD_INVERS_BRUSH, 0x0f0ff0, 3),
         "draw: FILL, AND with the brush inverted");
    t_ok(fill_rop("fill-or-invres", QXL_ROPD_OP_OR | QXL_ROPD_INVERS_RES, 0x204060, 4),
         "draw: FILL, OR with the result inverted");
    t_ok(pattern_fill("fill-pattern", 5), "draw: FILL pattern brush (8x6 tile, offset)");
    t_ok(copy_format("copy-32", QXL_BITMAP_32BIT, 6), "draw: COPY of a 32-bit bitmap");
    t_ok(copy_format("copy-24", QXL_BITMAP_24BIT, 7), "draw: COPY of a 24-bit bitmap");
    t_ok(copy_format("copy-16", QXL_BITMAP_16BIT, 8), "draw: COPY of a 16-bit (555) bitmap");
    t_ok(copy_format("copy-8", QXL_BITMAP_8BIT, 9), "draw: COPY of an 8-bit palette bitmap");
    t_ok(with_src("copy-xor", 10, 4, QXL_ROPD_OP_XOR, 0), "draw: COPY with ROP XOR");
    t_ok(with_src("opaque", 11, 0, QXL_ROPD_OP_XOR, 0x00ff80),
         "draw: OPAQUE (source, then brush XOR)");
    t_ok(with_src("blend-and", 12, 1, QXL_ROPD_OP_AND, 0), "draw: BLEND with ROP AND");
    t_ok(with_src("blend-or-invsrc", 13, 1, QXL_ROPD_OP_OR | QXL_ROPD_INVERS_SRC, 0),
         "draw: BLEND with ROP OR, source inverted");
    t_ok(copy_bits("copy-bits-up", 14, 0, -7), "draw: COPY_BITS scroll up by 7 (overlapping)");
    t_ok(copy_bits("copy-bits-downright", 15, 9, 5),
         "draw: COPY_BITS down-right by (9, 5) (overlapping)");
    t_ok(with_src("alpha-128", 16, 2, 0, 128), "draw: ALPHA_BLEND, constant alpha 128");
    t_ok(with_src("alpha-37", 17, 2, 0, 37), "draw: ALPHA_BLEND, constant alpha 37");
    t_ok(with_src("transparent", 18, 3, 0, 0), "draw: TRANSPARENT (colour key)");
    t_ok(stroke("stroke", 19), "draw: STROKE one-pixel polyline (endpoint-exclusive)");
    t_ok(text("text-a1", 20, qxl_font_small, -1), "draw: TEXT A1 glyphs, no background");
    t_ok(text("text-a1-bg", 21, qxl_font_large, 0xe0e0c0), "draw: TEXT A1 glyphs, 24 px, "
                                                            "background brush");
    t_ok(simple("blackness", 22, 0), "draw: BLACKNESS");
    t_ok(simple("whiteness", 23, 1), "draw: WHITENESS");
    t_ok(simple("invers", 24, 2), "draw: INVERS");
    t_ok(clipped("clip-fill", 25, false), "draw: FILL through 3 clip rectangles");
    t_ok(clipped("clip-copy", 26, true), "draw: two COPYs through 3 clip rectangles");
}

const struct suite suite_draw = {"draw", 26, run_draw,
                                 "each draw type, UPDATE_AREA readback vs reference"};
