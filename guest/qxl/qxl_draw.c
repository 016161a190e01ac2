/* One builder per QXL draw type.  See qxl_draw.h. */
#include "qxl/qxl_draw.h"

#include "lib/string.h"

void qxl_set_clip(struct qxl_device *q, const struct qxl_rect *rects, uint32_t n)
{
    q->clip = n ? rects : 0;
    q->nclip = n;
}

static void rect_copy(struct qxl_rect *dst, const struct qxl_rect *src)
{
    dst->top = src->top;
    dst->left = src->left;
    dst->bottom = src->bottom;
    dst->right = src->right;
}

struct qxl_drawable *qxl_drawable_new(struct qxl_device *q, uint32_t sid, uint8_t type,
                                      const struct qxl_rect *bbox, uint8_t effect)
{
    if (!qxl_surface_get(q, sid) || bbox->left >= bbox->right || bbox->top >= bbox->bottom)
        return 0;
    struct qxl_drawable *d = qxl_alloc(q, sizeof(*d), QXL_OBJ_DRAWABLE);
    if (!d)
        return 0;
    memset(d, 0, sizeof(*d));
    d->surface_id = sid;
    d->type = type;
    d->effect = effect;
    rect_copy(&d->bbox, bbox);
    d->mm_time = q->rom->mm_clock;
    for (int i = 0; i < 3; i++)
        d->surfaces_dest[i] = -1;
    if (q->nclip) {
        size_t size = sizeof(struct qxl_clip_rects) + q->nclip * sizeof(struct qxl_rect);
        struct qxl_clip_rects *c = qxl_alloc(q, size, QXL_OBJ_CLIP);
        if (!c) {
            qxl_obj_unref(d);
            return 0;
        }
        memset(c, 0, sizeof(*c));
        c->num_rects = q->nclip;
        c->chunk.data_size = q->nclip * sizeof(struct qxl_rect);
        memcpy(c->chunk.data, q->clip, q->nclip * sizeof(struct qxl_rect));
        d->clip.type = QXL_CLIP_RECTS;
        d->clip.data = qxl_phys(q, c);
        qxl_obj_attach(d, c);
        qxl_obj_unref(c);
    }
    return d;
}

/* Reference `img` from the drawable; a surface source also becomes one of
 * the drawable's surface dependencies, so the server renders it first. */
static qxl_phys_t use_image(struct qxl_device *q, struct qxl_drawable *d, struct qxl_image *img,
                            const struct qxl_rect *area)
{
    if (!qxl_obj_attach(d, img))
        return 0;
    if (img->descriptor.type == QXL_IMAGE_SURFACE) {
        for (int i = 0; i < 3; i++) {
            if (d->surfaces_dest[i] < 0) {
                d->surfaces_dest[i] = (int32_t)img->u.surface_image.surface_id;
                rect_copy(&d->surfaces_rects[i], area);
                break;
            }
        }
    }
    return qxl_phys(q, img);
}

int qxl_drawable_submit(struct qxl_device *q, struct qxl_drawable *d)
{
    return qxl_push_command(q, QXL_CMD_DRAW, d);
}

static int fail(struct qxl_device *q, struct qxl_drawable *d)
{
    if (d)
        qxl_obj_unref(d);
    return QXL_ENOMEM;
}

static uint8_t rop_effect(uint16_t rop)
{
    return rop == QXL_ROPD_OP_PUT ? QXL_EFFECT_OPAQUE : QXL_EFFECT_BLEND;
}

int qxl_fill(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r, uint32_t color,
             uint16_t rop)
{
    struct qxl_drawable *d = qxl_drawable_new(q, sid, QXL_DRAW_FILL, r, rop_effect(rop));
    if (!d)
        return QXL_EINVAL;
    d->u.fill.brush.type = QXL_BRUSH_SOLID;
    d->u.fill.brush.u.color = color;
    d->u.fill.rop_descriptor = rop;
    return qxl_drawable_submit(q, d);
}

int qxl_fill_pattern(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r,
                     struct qxl_image *pat, int32_t pos_x, int32_t pos_y, uint16_t rop)
{
    struct qxl_drawable *d = qxl_drawable_new(q, sid, QXL_DRAW_FILL, r, rop_effect(rop));
    if (!d)
        return QXL_EINVAL;
    d->u.fill.brush.type = QXL_BRUSH_PATTERN;
    struct qxl_rect whole = qxl_rect_xywh(0, 0, pat->descriptor.width, pat->descriptor.height);
    d->u.fill.brush.u.pattern.pat = use_image(q, d, pat, &whole);
    d->u.fill.brush.u.pattern.pos.x = pos_x;
    d->u.fill.brush.u.pattern.pos.y = pos_y;
    d->u.fill.rop_descriptor = rop;
    if (!d->u.fill.brush.u.pattern.pat)
        return fail(q, d);
    return qxl_drawable_submit(q, d);
}

int qxl_copy(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
             struct qxl_image *src, const struct qxl_rect *src_area, uint16_t rop,
             uint8_t scale_mode)
{
    struct qxl_drawable *d = qxl_drawable_new(q, sid, QXL_DRAW_COPY, dst, rop_effect(rop));
    if (!d)
        return QXL_EINVAL;
    d->u.copy.src_bitmap = use_image(q, d, src, src_area);
    rect_copy(&d->u.copy.src_area, src_area);
    d->u.copy.rop_descriptor = rop;
    d->u.copy.scale_mode = scale_mode;
    if (!d->u.copy.src_bitmap)
        return fail(q, d);
    return qxl_drawable_submit(q, d);
}

int qxl_opaque(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
               struct qxl_image *src, const struct qxl_rect *src_area, uint32_t brush_color,
               uint16_t rop)
{
    struct qxl_drawable *d = qxl_drawable_new(q, sid, QXL_DRAW_OPAQUE, dst, QXL_EFFECT_OPAQUE);
    if (!d)
        return QXL_EINVAL;
    d->u.opaque.src_bitmap = use_image(q, d, src, src_area);
    rect_copy(&d->u.opaque.src_area, src_area);
    d->u.opaque.brush.type = QXL_BRUSH_SOLID;
    d->u.opaque.brush.u.color = brush_color;
    d->u.opaque.rop_descriptor = rop;
    d->u.opaque.scale_mode = QXL_SCALE_NEAREST;
    if (!d->u.opaque.src_bitmap)
        return fail(q, d);
    return qxl_drawable_submit(q, d);
}

int qxl_blend(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
              struct qxl_image *src, const struct qxl_rect *src_area, uint16_t rop)
{
    struct qxl_drawable *d = qxl_drawable_new(q, sid, QXL_DRAW_BLEND, dst, QXL_EFFECT_BLEND);
    if (!d)
        return QXL_EINVAL;
    d->u.blend.src_bitmap = use_image(q, d, src, src_area);
    rect_copy(&d->u.blend.src_area, src_area);
    d->u.blend.rop_descriptor = rop;
    d->u.blend.scale_mode = QXL_SCALE_NEAREST;
    if (!d->u.blend.src_bitmap)
        return fail(q, d);
    return qxl_drawable_submit(q, d);
}

int qxl_copy_bits(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
                  int32_t src_x, int32_t src_y)
{
    struct qxl_drawable *d = qxl_drawable_new(q, sid, QXL_COPY_BITS, dst, QXL_EFFECT_OPAQUE);
    if (!d)
        return QXL_EINVAL;
    d->u.copy_bits.src_pos.x = src_x;
    d->u.copy_bits.src_pos.y = src_y;
    return qxl_drawable_submit(q, d);
}

int qxl_alpha_blend(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
                    struct qxl_image *src, const struct qxl_rect *src_area, uint8_t alpha,
                    uint16_t alpha_flags)
{
    struct qxl_drawable *d = qxl_drawable_new(q, sid, QXL_DRAW_ALPHA_BLEND, dst, QXL_EFFECT_BLEND);
    if (!d)
        return QXL_EINVAL;
    d->u.alpha_blend.alpha_flags = alpha_flags;
    d->u.alpha_blend.alpha = alpha;
    d->u.alpha_blend.src_bitmap = use_image(q, d, src, src_area);
    rect_copy(&d->u.alpha_blend.src_area, src_area);
    if (!d->u.alpha_blend.src_bitmap)
        return fail(q, d);
    return qxl_drawable_submit(q, d);
}

int qxl_transparent(struct qxl_device *q, uint32_t sid, const struct qxl_rect *dst,
                    struct qxl_image *src, const struct qxl_rect *src_area, uint32_t key)
{
    struct qxl_drawable *d = qxl_drawable_new(q, sid, QXL_DRAW_TRANSPARENT, dst, QXL_EFFECT_BLEND);
    if (!d)
        return QXL_EINVAL;
    d->u.transparent.src_bitmap = use_image(q, d, src, src_area);
    rect_copy(&d->u.transparent.src_area, src_area);
    d->u.transparent.src_color = key;
    d->u.transparent.true_color = key;
    if (!d->u.transparent.src_bitmap)
        return fail(q, d);
    return qxl_drawable_submit(q, d);
}

int qxl_stroke(struct qxl_device *q, uint32_t sid, const struct qxl_point *pts, uint32_t n,
               uint32_t color, uint16_t rop)
{
    if (n < 2 || n > 1024)
        return QXL_EINVAL;
    struct qxl_rect bbox = {pts[0].y, pts[0].x, pts[0].y + 1, pts[0].x + 1};
    for (uint32_t i = 1; i < n; i++) {
        if (pts[i].x < bbox.left) bbox.left = pts[i].x;
        if (pts[i].y < bbox.top) bbox.top = pts[i].y;
        if (pts[i].x + 1 > bbox.right) bbox.right = pts[i].x + 1;
        if (pts[i].y + 1 > bbox.bottom) bbox.bottom = pts[i].y + 1;
    }
    struct qxl_drawable *d = qxl_drawable_new(q, sid, QXL_DRAW_STROKE, &bbox, QXL_EFFECT_BLEND);
    if (!d)
        return QXL_EINVAL;
    uint32_t seg_size = sizeof(struct qxl_path_seg) + n * sizeof(struct qxl_point_fix);
    struct qxl_path *path = qxl_alloc(q, sizeof(*path) + seg_size, QXL_OBJ_PATH);
    if (!path)
        return fail(q, d);
    memset(path, 0, sizeof(*path));
    path->data_size = seg_size;
    path->chunk.data_size = seg_size;
    struct qxl_path_seg *seg = (struct qxl_path_seg *)path->chunk.data;
    seg->flags = QXL_PATH_BEGIN | QXL_PATH_END;
    seg->count = n;
    for (uint32_t i = 0; i < n; i++) {
        /* 28.4 fixed point; a multiply, as shifting a negative int is undefined */
        seg->points[i].x = pts[i].x * 16;
        seg->points[i].y = pts[i].y * 16;
    }
    qxl_obj_attach(d, path);
    qxl_obj_unref(path);
    d->u.stroke.path = qxl_phys(q, path);
    d->u.stroke.attr.width = 1 << 4;
    d->u.stroke.brush.type = QXL_BRUSH_SOLID;
    d->u.stroke.brush.u.color = color;
    d->u.stroke.fore_mode = rop;
    d->u.stroke.back_mode = QXL_ROPD_OP_PUT;
    return qxl_drawable_submit(q, d);
}

static int mask_only(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r, uint8_t type,
                     uint8_t effect)
{
    struct qxl_drawable *d = qxl_drawable_new(q, sid, type, r, effect);
    if (!d)
        return QXL_EINVAL;
    return qxl_drawable_submit(q, d);
}

int qxl_blackness(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r)
{
    return mask_only(q, sid, r, QXL_DRAW_BLACKNESS, QXL_EFFECT_OPAQUE);
}

int qxl_whiteness(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r)
{
    return mask_only(q, sid, r, QXL_DRAW_WHITENESS, QXL_EFFECT_OPAQUE);
}

int qxl_invers(struct qxl_device *q, uint32_t sid, const struct qxl_rect *r)
{
    /* inverting the same box twice is a no-op: the server may drop both
     * (a blinking caret then leaves nothing behind in its tree) */
    return mask_only(q, sid, r, QXL_DRAW_INVERS, QXL_EFFECT_REVERT_ON_DUP);
}
