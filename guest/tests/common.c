/* Helpers shared by the suites (see suite.h). */
#include <stdarg.h>

#include "lib/alloc.h"
#include "lib/string.h"
#include "suite.h"

int suite_printed;

bool t_ok(bool cond, const char *fmt, ...)
{
    char buf[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    suite_printed++;
    return ok(cond, "%s", buf);
}

void t_skip(const char *fmt, ...)
{
    char buf[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    suite_printed++;
    skip("%s", buf);
}

void t_bail(const struct suite *s, const char *why)
{
    while (suite_printed < s->tests)
        t_ok(false, "%s: not run (%s)", s->name, why);
}

bool t_ready(void)
{
    if (!qxl.ram) {
        int rc = qxl_init(&qxl, 0);
        if (rc != QXL_OK) {
            diag("qxl_init: %s", qxl_strerror(rc));
            return false;
        }
    }
    if (qxl.guest_bug) {
        diag("device in guest-bug state: resetting");
        if (qxl_reset(&qxl) != QXL_OK)
            return false;
    }
    qxl_clear_clip(&qxl);
    if (!qxl.primary.live || qxl.primary.width != 640 || qxl.primary.height != 480 ||
        qxl.primary.format != QXL_SURF_FMT_32_xRGB) {
        int rc = qxl_create_primary(&qxl, 640, 480, QXL_SURF_FMT_32_xRGB, false);
        if (rc != QXL_OK) {
            diag("create primary: %s", qxl_strerror(rc));
            return false;
        }
    }
    return true;
}

bool t_read(uint32_t sid, const struct qxl_rect *r, uint32_t *out)
{
    struct qxl_surface *s = qxl_surface_get(&qxl, sid);
    if (!s || qxl_format_bpp(s->format) != 4)
        return false;
    if (qxl_update_area(&qxl, sid, r, false) != QXL_OK)
        return false;
    int32_t w = r->right - r->left;
    for (int32_t y = r->top; y < r->bottom; y++) {
        const uint32_t *row = (const uint32_t *)(s->mem + y * s->stride);
        for (int32_t x = r->left; x < r->right; x++)
            out[(y - r->top) * w + (x - r->left)] = row[x] & 0xffffff;
    }
    return true;
}

void t_dump(const char *name, const char *stage, uint32_t sid, const struct qxl_rect *r,
            const uint32_t *px)
{
    int32_t w = r->right - r->left, h = r->bottom - r->top;
    printf("# golden %s %s surface=%u x=%d y=%d w=%d h=%d\n", name, stage, sid, r->left, r->top,
           w, h);
    char line[8 * 128 + 1];
    for (int32_t y = 0; y < h; y++) {
        for (int32_t x0 = 0; x0 < w; x0 += 128) {
            int32_t n = w - x0 < 128 ? w - x0 : 128;
            for (int32_t i = 0; i < n; i++)
                snprintf(line + 8 * i, 9, "%08x", px[y * w + x0 + i] & 0xffffff);
            printf("# row %d %d %s\n", y, x0, line);
        }
    }
    printf("# golden-end %s %s crc=%08x\n", name, stage, qxl_crc32(px, (uint32_t)(w * h * 4)));
}

bool t_check(const char *name, uint32_t sid, const struct qxl_rect *r, const uint32_t *expect)
{
    int32_t w = r->right - r->left, h = r->bottom - r->top;
    uint32_t *got = malloc((size_t)w * h * 4);
    if (!got)
        return false;
    bool read = t_read(sid, r, got);
    uint32_t bad = 0;
    for (int32_t i = 0; read && i < w * h; i++) {
        if ((got[i] & 0xffffff) != (expect[i] & 0xffffff)) {
            if (bad < 4)
                diag("%s: (%d,%d) device %06x expected %06x", name, r->left + i % w,
                     r->top + i / w, got[i] & 0xffffff, expect[i] & 0xffffff);
            bad++;
        }
    }
    if (bad)
        diag("%s: %u of %d pixels differ", name, bad, w * h);
    if (opt_dump && read)
        t_dump(name, "after", sid, r, got);
    free(got);
    return read && !bad;
}

bool t_wait_error(uint32_t ms)
{
    if (qxl.guest_bug)
        return true;
    uint32_t seen = qxl.error_count;
    qxl_wait_counter(&qxl.error_count, seen, ms);
    return qxl.guest_bug;
}

static bool ring_drained(void *ctx)
{
    (void)ctx;
    return qxl.ram->cmd_ring.h.cons == qxl.ram->cmd_ring.h.prod;
}

bool t_wait_idle(uint32_t ms)
{
    return qxl_wait(ring_drained, 0, ms);
}

void t_pattern(uint32_t *px, uint32_t w, uint32_t h, uint32_t seed)
{
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint32_t r = (x * 255 / (w > 1 ? w - 1 : 1) + seed * 37) & 0xff;
            uint32_t g = (y * 255 / (h > 1 ? h - 1 : 1) + seed * 91) & 0xff;
            uint32_t b = ((x ^ y) * 8 + seed * 53) & 0xff;
            px[y * w + x] = (r << 16) | (g << 8) | b;
        }
}
