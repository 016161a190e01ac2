/* Reference rendering (see ref.h). */
#include "ref.h"

static const struct qxl_rect *clip_rects;
static uint32_t clip_n;

void ref_set_clip(const struct qxl_rect *rects, uint32_t n)
{
    clip_rects = n ? rects : 0;
    clip_n = n;
}

static bool clipped_in(int32_t x, int32_t y)
{
    if (!clip_n)
        return true;
    for (uint32_t i = 0; i < clip_n; i++) {
        const struct qxl_rect *r = &clip_rects[i];
        if (x >= r->left && x < r->right && y >= r->top && y < r->bottom)
            return true;
    }
    return false;
}

/* the pixel at surface (x, y), or NULL outside the canvas or the clip */
static uint32_t *at(struct ref_canvas *c, int32_t x, int32_t y)
{
    if (x < c->x0 || y < c->y0 || x >= c->x0 + c->w || y >= c->y0 + c->h || !clipped_in(x, y))
        return 0;
    return &c->px[(y - c->y0) * c->w + (x - c->x0)];
}

uint32_t ref_rop(uint32_t a, uint32_t b, uint16_t ropd, bool a_is_src)
{
    uint32_t inv_a = a_is_src ? QXL_ROPD_INVERS_SRC : QXL_ROPD_INVERS_BRUSH;
    if (ropd & inv_a)
        a = ~a;
    if (ropd & QXL_ROPD_INVERS_DEST)
        b = ~b;
    uint32_t r;
    if (ropd & QXL_ROPD_OP_PUT)
        r = a;
    else if (ropd & QXL_ROPD_OP_OR)
        r = a | b;
    else if (ropd & QXL_ROPD_OP_AND)
        r = a & b;
    else if (ropd & QXL_ROPD_OP_XOR)
        r = a ^ b;
    else
        r = b;
    if (ropd & QXL_ROPD_INVERS_RES)
        r = ~r;
    return r & 0xffffff;
}

#define FOR_RECT(r, x, y)                                  \
    for (int32_t y = (r)->top; y < (r)->bottom; y++)       \
        for (int32_t x = (r)->left; x < (r)->right; x++)

void ref_fill(struct ref_canvas *c, const struct qxl_rect *r, uint32_t color, uint16_t ropd)
{
    FOR_RECT(r, x, y) {
        uint32_t *p = at(c, x, y);
        if (p)
            *p = ref_rop(color, *p, ropd, false);
    }
}

static int32_t mod(int32_t a, int32_t m)
{
    int32_t r = a % m;
    return r < 0 ? r + m : r;
}

void ref_fill_pattern(struct ref_canvas *c, const struct qxl_rect *r, const struct ref_image *pat,
                      int32_t pos_x, int32_t pos_y, uint16_t ropd)
{
    FOR_RECT(r, x, y) {
        uint32_t *p = at(c, x, y);
        if (p) {
            uint32_t t = pat->px[mod(y - pos_y, pat->h) * pat->w + mod(x - pos_x, pat->w)];
            *p = ref_rop(t, *p, ropd, false);
        }
    }
}

static uint32_t src_px(const struct ref_image *s, const struct qxl_rect *dst,
                       const struct qxl_rect *area, int32_t x, int32_t y)
{
    return s->px[(area->top + y - dst->top) * s->w + area->left + x - dst->left] & 0xffffff;
}

void ref_copy(struct ref_canvas *c, const struct qxl_rect *dst, const struct ref_image *src,
              const struct qxl_rect *src_area, uint16_t ropd)
{
    FOR_RECT(dst, x, y) {
        uint32_t *p = at(c, x, y);
        if (p)
            *p = ref_rop(src_px(src, dst, src_area, x, y), *p, ropd, true);
    }
}

void ref_opaque(struct ref_canvas *c, const struct qxl_rect *dst, const struct ref_image *src,
                const struct qxl_rect *src_area, uint32_t brush, uint16_t ropd)
{
    /* the source is put first, then the brush is combined with it; the
     * source plays the destination's part (so INVERS_SRC inverts it) */
    uint16_t swapped = ropd & ~(QXL_ROPD_INVERS_SRC | QXL_ROPD_INVERS_DEST);
    if (ropd & QXL_ROPD_INVERS_SRC)
        swapped |= QXL_ROPD_INVERS_DEST;
    FOR_RECT(dst, x, y) {
        uint32_t *p = at(c, x, y);
        if (p)
            *p = ref_rop(brush, src_px(src, dst, src_area, x, y), swapped, false);
    }
}

void ref_copy_bits(struct ref_canvas *c, const struct qxl_rect *dst, int32_t sx, int32_t sy)
{
    /* read everything first: source and destination may overlap */
    int32_t w = dst->right - dst->left, h = dst->bottom - dst->top;
    static uint32_t tmp[256 * 256];
    if (w <= 0 || h <= 0 || w * h > 256 * 256)
        return;
    for (int32_t y = 0; y < h; y++)
        for (int32_t x = 0; x < w; x++) {
            int32_t ux = sx + x, uy = sy + y;
            uint32_t v = 0;
            if (ux >= c->x0 && uy >= c->y0 && ux < c->x0 + c->w && uy < c->y0 + c->h)
                v = c->px[(uy - c->y0) * c->w + (ux - c->x0)];
            tmp[y * w + x] = v;
        }
    for (int32_t y = 0; y < h; y++)
        for (int32_t x = 0; x < w; x++) {
            uint32_t *p = at(c, dst->left + x, dst->top + y);
            if (p)
                *p = tmp[y * w + x];
        }
}

/* x * a / 255 rounded the way pixman's 8-bit multiply rounds */
static uint32_t mul_un8(uint32_t x, uint32_t a)
{
    uint32_t t = x * a + 0x80;
    return (t + (t >> 8)) >> 8;
}

void ref_alpha_blend(struct ref_canvas *c, const struct qxl_rect *dst,
                     const struct ref_image *src, const struct qxl_rect *src_area, uint8_t alpha)
{
    FOR_RECT(dst, x, y) {
        uint32_t *p = at(c, x, y);
        if (!p)
            continue;
        uint32_t s = src_px(src, dst, src_area, x, y), d = *p, out = 0;
        for (int sh = 0; sh < 24; sh += 8) {
            uint32_t v = mul_un8((s >> sh) & 0xff, alpha) + mul_un8((d >> sh) & 0xff, 255 - alpha);
            out |= (v > 255 ? 255 : v) << sh;
        }
        *p = out;
    }
}

void ref_transparent(struct ref_canvas *c, const struct qxl_rect *dst,
                     const struct ref_image *src, const struct qxl_rect *src_area, uint32_t key)
{
    FOR_RECT(dst, x, y) {
        uint32_t *p = at(c, x, y);
        uint32_t s = src_px(src, dst, src_area, x, y);
        if (p && s != (key & 0xffffff))
            *p = s;
    }
}

bool ref_stroke(struct ref_canvas *c, const struct qxl_point *pts, uint32_t n, uint32_t color,
                uint16_t ropd)
{
    for (uint32_t i = 0; i + 1 < n; i++)
        if (pts[i].x != pts[i + 1].x && pts[i].y != pts[i + 1].y)
            return false;
    for (uint32_t i = 0; i + 1 < n; i++) {
        int32_t x = pts[i].x, y = pts[i].y;
        int32_t dx = pts[i + 1].x > x ? 1 : pts[i + 1].x < x ? -1 : 0;
        int32_t dy = pts[i + 1].y > y ? 1 : pts[i + 1].y < y ? -1 : 0;
        /* every segment leaves out its last point; the next one starts there */
        while (x != pts[i + 1].x || y != pts[i + 1].y) {
            uint32_t *p = at(c, x, y);
            if (p)
                *p = ref_rop(color, *p, ropd, false);
            x += dx;
            y += dy;
        }
    }
    return true;
}

void ref_text(struct ref_canvas *c, const struct qxl_font *f, int32_t x, int32_t y,
              const char *s, uint32_t fg, int32_t bg)
{
    if (bg >= 0) {
        struct qxl_rect box = qxl_text_box(f, x, y, s);
        ref_fill(c, &box, (uint32_t)bg, QXL_ROPD_OP_PUT);
    }
    for (; *s; s++) {
        const struct qxl_glyph *g = qxl_font_glyph(f, *s);
        uint32_t row = (g->width + 7u) / 8;
        for (uint32_t gy = 0; gy < g->height; gy++)
            for (uint32_t gx = 0; gx < g->width; gx++) {
                if (!(f->bits[g->offset + gy * row + gx / 8] & (0x80 >> (gx % 8))))
                    continue;
                uint32_t *p = at(c, x + g->left + (int32_t)gx, y - g->top + (int32_t)gy);
                if (p)
                    *p = fg & 0xffffff;
            }
        x += g->advance;
    }
}

void ref_blackness(struct ref_canvas *c, const struct qxl_rect *r)
{
    ref_fill(c, r, 0, QXL_ROPD_OP_PUT);
}

void ref_whiteness(struct ref_canvas *c, const struct qxl_rect *r)
{
    ref_fill(c, r, 0xffffff, QXL_ROPD_OP_PUT);
}

void ref_invers(struct ref_canvas *c, const struct qxl_rect *r)
{
    FOR_RECT(r, x, y) {
        uint32_t *p = at(c, x, y);
        if (p)
            *p = ~*p & 0xffffff;
    }
}

uint32_t ref_from_555(uint16_t v)
{
    uint32_t r = (v >> 10) & 0x1f, g = (v >> 5) & 0x1f, b = v & 0x1f;
    r = (r << 3) | (r >> 2);
    g = (g << 3) | (g >> 2);
    b = (b << 3) | (b >> 2);
    return (r << 16) | (g << 8) | b;
}

uint32_t ref_from_24(const uint8_t *bgr)
{
    return ((uint32_t)bgr[2] << 16) | ((uint32_t)bgr[1] << 8) | bgr[0];
}
