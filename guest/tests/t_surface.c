/* Suite surface: off-screen surfaces created, drawn into, read back, used as
 * copy sources and destroyed. */
#include "lib/alloc.h"
#include "lib/string.h"
#include "suite.h"

#define SW 128
#define SH 96

static bool read_expect_fill(uint32_t sid, const struct qxl_rect *r, uint32_t color)
{
    int32_t w = r->right - r->left, h = r->bottom - r->top;
    uint32_t *want = malloc(w * h * 4);
    if (!want)
        return false;
    for (int32_t i = 0; i < w * h; i++)
        want[i] = color;
    bool good = t_check("surface-fill", sid, r, want);
    free(want);
    return good;
}

static void run_surface(void)
{
    if (!t_ready())
        return;
    int s1 = qxl_surface_create(&qxl, SW, SH, QXL_SURF_FMT_32_xRGB);
    struct qxl_rect all = qxl_rect_xywh(0, 0, SW, SH);
    struct qxl_rect part = qxl_rect_xywh(10, 20, 50, 30);
    bool good = s1 > 0;
    if (good) {
        qxl_fill(&qxl, s1, &all, 0x203040, QXL_ROPD_OP_PUT);
        qxl_fill(&qxl, s1, &part, 0xc0ffee, QXL_ROPD_OP_PUT);
        good = read_expect_fill(s1, &part, 0xc0ffee) && !qxl.guest_bug;
    }
    t_ok(good, "surface: off-screen %ux%u surface %d created in VRAM, filled, read back "
               "through UPDATE_AREA", SW, SH, s1);

    /* surface 1 as the source of a copy onto the primary */
    uint32_t *px = malloc(SW * SH * 4);
    struct ref_canvas cv = {200, 100, 160, 120, malloc(160 * 120 * 4)};
    struct qxl_rect region = qxl_rect_xywh(200, 100, 160, 120);
    good = s1 > 0 && px && cv.px && t_read(s1, &all, px) && t_read(0, &region, cv.px);
    if (good) {
        struct ref_image src = {SW, SH, px};
        struct qxl_rect dst = qxl_rect_xywh(210, 110, 100, 80);
        struct qxl_rect area = qxl_rect_xywh(5, 10, 100, 80);
        ref_copy(&cv, &dst, &src, &area, QXL_ROPD_OP_PUT);
        struct qxl_image *img = qxl_image_surface(&qxl, s1);
        good = img && qxl_copy(&qxl, 0, &dst, img, &area, QXL_ROPD_OP_PUT,
                               QXL_SCALE_NEAREST) == QXL_OK;
        qxl_image_put(img);
        good = good && t_check("surface-to-primary", 0, &region, cv.px);
    }
    t_ok(good, "surface: off-screen surface as the source of a COPY onto the primary");

    /* surface to surface, then the second surface to the primary */
    int s2 = qxl_surface_create(&qxl, SW, SH, QXL_SURF_FMT_32_xRGB);
    good = s1 > 0 && s2 > 0 && s2 != s1;
    if (good) {
        qxl_fill(&qxl, s2, &all, 0x000000, QXL_ROPD_OP_PUT);
        struct qxl_image *img = qxl_image_surface(&qxl, s1);
        struct qxl_rect dst = qxl_rect_xywh(0, 0, 64, 48);
        struct qxl_rect area = qxl_rect_xywh(10, 20, 64, 48);
        good = img && qxl_copy(&qxl, s2, &dst, img, &area, QXL_ROPD_OP_PUT,
                               QXL_SCALE_NEAREST) == QXL_OK;
        qxl_image_put(img);
        uint32_t *want = malloc(64 * 48 * 4);
        for (int y = 0; want && y < 48; y++)
            for (int x = 0; x < 64; x++)
                want[y * 64 + x] = (x < 50 && y < 30) ? 0xc0ffee : 0x203040;
        good = good && want && t_check("surface-to-surface", s2, &dst, want);
        free(want);
    }
    t_ok(good, "surface: COPY from one off-screen surface into another");

    /* sixteen small surfaces, each a colour, tiled onto the primary */
    int ids[16];
    good = true;
    for (int i = 0; i < 16; i++) {
        ids[i] = qxl_surface_create(&qxl, 16, 16, QXL_SURF_FMT_32_xRGB);
        struct qxl_rect r = qxl_rect_xywh(0, 0, 16, 16);
        good = good && ids[i] > 0 &&
               qxl_fill(&qxl, ids[i], &r, 0x101010u * (uint32_t)i + 0x0f, QXL_ROPD_OP_PUT) ==
                   QXL_OK;
    }
    struct qxl_rect strip = qxl_rect_xywh(0, 300, 256, 16);
    uint32_t *want = malloc(256 * 16 * 4);
    for (int i = 0; good && i < 16; i++) {
        struct qxl_image *img = qxl_image_surface(&qxl, ids[i]);
        struct qxl_rect dst = qxl_rect_xywh(i * 16, 300, 16, 16);
        struct qxl_rect area = qxl_rect_xywh(0, 0, 16, 16);
        good = img && qxl_copy(&qxl, 0, &dst, img, &area, QXL_ROPD_OP_PUT,
                               QXL_SCALE_NEAREST) == QXL_OK;
        qxl_image_put(img);
    }
    for (int y = 0; want && y < 16; y++)
        for (int x = 0; x < 256; x++)
            want[y * 256 + x] = 0x101010u * (uint32_t)(x / 16) + 0x0f;
    good = good && want && t_check("surface-strip", 0, &strip, want);
    free(want);
    for (int i = 0; i < 16; i++)
        if (ids[i] > 0)
            qxl_surface_destroy(&qxl, ids[i]);
    t_ok(good, "surface: 16 surfaces at once, each copied onto the primary");

    if (s1 > 0)
        qxl_surface_destroy(&qxl, s1);
    if (s2 > 0)
        qxl_surface_destroy(&qxl, s2);
    uint32_t live = 0;
    for (int i = 0; i < 100; i++) {
        qxl_flush_releases(&qxl);
        live = qxl.vram_arena.live_objects;
        if (!live)
            break;
        pit_sleep_ms(10);
    }
    t_ok(live == 0 && !qxl.guest_bug,
         "surface: destroyed surfaces' VRAM comes back with the released destroy commands "
         "(%u VRAM objects left)", live);
    free(px);
    free(cv.px);
}

const struct suite suite_surface = {"surface", 5, run_surface,
                                    "off-screen surfaces: create, draw, read, copy, destroy"};
