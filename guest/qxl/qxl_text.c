/* QXL_DRAW_TEXT with A1 raster glyphs from the generated fonts. */
#include "qxl/qxl_draw.h"

#include "font.h"
#include "lib/string.h"

const struct qxl_font *const qxl_font_small = &qxl_font_sans14;
const struct qxl_font *const qxl_font_large = &qxl_font_sans24;

int qxl_font_text_width(const struct qxl_font *f, const char *s, int n)
{
    int w = 0;
    for (int i = 0; s[i] && (n < 0 || i < n); i++)
        w += qxl_font_glyph(f, s[i])->advance;
    return w;
}

struct qxl_rect qxl_text_box(const struct qxl_font *f, int32_t x, int32_t y, const char *s)
{
    struct qxl_rect box = {0, 0, 0, 0};
    bool any = false;
    for (; *s; s++) {
        const struct qxl_glyph *g = qxl_font_glyph(f, *s);
        if (g->width && g->height) {
            struct qxl_rect r = {y - g->top, x + g->left, y - g->top + g->height,
                                 x + g->left + g->width};
            if (!any) {
                box = r;
                any = true;
            } else {
                if (r.left < box.left) box.left = r.left;
                if (r.top < box.top) box.top = r.top;
                if (r.right > box.right) box.right = r.right;
                if (r.bottom > box.bottom) box.bottom = r.bottom;
            }
        }
        x += g->advance;
    }
    return box;
}

int qxl_text(struct qxl_device *q, uint32_t sid, const struct qxl_font *f, int32_t x,
             int32_t y, const char *s, uint32_t fg, int32_t bg)
{
    uint32_t n = 0, data = 0;
    for (const char *p = s; *p; p++) {
        const struct qxl_glyph *g = qxl_font_glyph(f, *p);
        if (g->width && g->height) {
            n++;
            data += sizeof(struct qxl_raster_glyph) + g->height * ((g->width + 7u) / 8);
        }
    }
    struct qxl_rect box = qxl_text_box(f, x, y, s);
    if (!n) {
        if (bg >= 0 && box.right > box.left)
            return qxl_fill(q, sid, &box, (uint32_t)bg, QXL_ROPD_OP_PUT);
        return QXL_OK;
    }
    struct qxl_string *str = qxl_alloc(q, sizeof(*str) + data, QXL_OBJ_STRING);
    if (!str)
        return QXL_ENOMEM;
    memset(str, 0, sizeof(*str));
    str->data_size = data;
    str->length = n;
    str->flags = QXL_STRING_RASTER_A1;
    str->chunk.data_size = data;
    uint8_t *out = str->chunk.data;
    int32_t pen = x;
    for (const char *p = s; *p; p++) {
        const struct qxl_glyph *g = qxl_font_glyph(f, *p);
        if (g->width && g->height) {
            struct qxl_raster_glyph *rg = (struct qxl_raster_glyph *)out;
            rg->render_pos.x = pen;
            rg->render_pos.y = y;
            rg->glyph_origin.x = g->left;
            rg->glyph_origin.y = -g->top;
            rg->width = g->width;
            rg->height = g->height;
            uint32_t row = (g->width + 7u) / 8;
            /* the device reads glyph rows bottom line first */
            for (uint32_t r = 0; r < g->height; r++)
                memcpy(rg->data + r * row, f->bits + g->offset + (g->height - 1 - r) * row, row);
            out += sizeof(*rg) + g->height * row;
        }
        pen += g->advance;
    }

    struct qxl_drawable *d = qxl_drawable_new(q, sid, QXL_DRAW_TEXT, &box, QXL_EFFECT_BLEND);
    if (!d) {
        qxl_obj_unref(str);
        return QXL_EINVAL;
    }
    qxl_obj_attach(d, str);
    qxl_obj_unref(str);
    d->u.text.str = qxl_phys(q, str);
    /* a non-empty back area is always painted (black without a brush) */
    if (bg >= 0)
        d->u.text.back_area = box;
    d->u.text.fore_brush.type = QXL_BRUSH_SOLID;
    d->u.text.fore_brush.u.color = fg;
    if (bg >= 0) {
        d->u.text.back_brush.type = QXL_BRUSH_SOLID;
        d->u.text.back_brush.u.color = (uint32_t)bg;
    }
    d->u.text.fore_mode = QXL_ROPD_OP_PUT;
    d->u.text.back_mode = QXL_ROPD_OP_PUT;
    return qxl_drawable_submit(q, d);
}
