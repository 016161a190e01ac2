/* Source images: bitmaps (one device object holding the image header, the
 * palette and the pixels) and surfaces.  See qxl_draw.h. */
#include "qxl/qxl_draw.h"

#include "lib/string.h"

static uint32_t bitmap_bpp(uint8_t fmt)
{
    switch (fmt) {
    case QXL_BITMAP_1BIT_LE:
    case QXL_BITMAP_1BIT_BE:
        return 1;
    case QXL_BITMAP_4BIT_LE:
    case QXL_BITMAP_4BIT_BE:
        return 4;
    case QXL_BITMAP_8BIT:
    case QXL_BITMAP_8BIT_A:
        return 8;
    case QXL_BITMAP_16BIT:
        return 16;
    case QXL_BITMAP_24BIT:
        return 24;
    case QXL_BITMAP_32BIT:
    case QXL_BITMAP_RGBA:
        return 32;
    }
    return 0;
}

static bool needs_palette(uint8_t fmt)
{
    return fmt >= QXL_BITMAP_1BIT_LE && fmt <= QXL_BITMAP_8BIT;
}

struct qxl_image *qxl_image_bitmap(struct qxl_device *q, uint8_t fmt, uint32_t w, uint32_t h,
                                   const void *pixels, uint32_t src_stride,
                                   const uint32_t *palette, uint16_t n_palette, bool cache)
{
    uint32_t bpp = bitmap_bpp(fmt);
    if (!bpp || !w || !h || (needs_palette(fmt) && (!palette || !n_palette)))
        return 0;
    uint32_t stride = ((w * bpp + 7) / 8 + 3) & ~3u;
    uint32_t pal_size = needs_palette(fmt) ? sizeof(struct qxl_palette) + 4u * n_palette : 0;
    uint32_t head = (sizeof(struct qxl_image) + pal_size + 15) & ~15u;
    struct qxl_image *img = qxl_alloc(q, head + (size_t)stride * h, QXL_OBJ_IMAGE);
    if (!img)
        return 0;
    uint8_t *data = (uint8_t *)img + head;
    memset(img, 0, sizeof(*img));
    uint64_t unique = q->image_unique++;
    img->descriptor.id = (unique << 32) | QXL_IMAGE_GROUP_DRIVER;
    img->descriptor.type = QXL_IMAGE_BITMAP;
    img->descriptor.flags = cache ? QXL_IMAGE_CACHE : 0;
    img->descriptor.width = w;
    img->descriptor.height = h;
    img->u.bitmap.format = fmt;
    img->u.bitmap.flags = QXL_BITMAP_DIRECT | QXL_BITMAP_TOP_DOWN;
    img->u.bitmap.x = w;
    img->u.bitmap.y = h;
    img->u.bitmap.stride = stride;
    img->u.bitmap.data = qxl_phys(q, data);
    if (pal_size) {
        struct qxl_palette *pal = (struct qxl_palette *)(img + 1);
        pal->unique = unique;
        pal->num_ents = n_palette;
        memcpy(pal->ents, palette, 4u * n_palette);
        img->u.bitmap.palette = qxl_phys(q, pal);
    }
    if (pixels) {
        uint32_t row = (w * bpp + 7) / 8;
        for (uint32_t y = 0; y < h; y++)
            memcpy(data + y * stride, (const uint8_t *)pixels + y * src_stride, row);
    }
    return img;
}

struct qxl_image *qxl_image_alloc32(struct qxl_device *q, uint32_t w, uint32_t h, bool cache)
{
    return qxl_image_bitmap(q, QXL_BITMAP_32BIT, w, h, 0, 0, 0, 0, cache);
}

uint8_t *qxl_image_pixels(struct qxl_image *img)
{
    uint32_t head = (sizeof(struct qxl_image) + 15) & ~15u;
    if (img->u.bitmap.palette) {
        const struct qxl_palette *pal = (const struct qxl_palette *)(img + 1);
        head = (sizeof(struct qxl_image) + sizeof(*pal) + 4u * pal->num_ents + 15) & ~15u;
    }
    return (uint8_t *)img + head;
}

struct qxl_image *qxl_image_surface(struct qxl_device *q, uint32_t surface_id)
{
    struct qxl_surface *s = qxl_surface_get(q, surface_id);
    if (!s)
        return 0;
    struct qxl_image *img = qxl_alloc(q, sizeof(*img), QXL_OBJ_IMAGE);
    if (!img)
        return 0;
    memset(img, 0, sizeof(*img));
    img->descriptor.id = ((uint64_t)q->image_unique++ << 32) | QXL_IMAGE_GROUP_DRIVER;
    img->descriptor.type = QXL_IMAGE_SURFACE;
    img->descriptor.width = s->width;
    img->descriptor.height = s->height;
    img->u.surface_image.surface_id = surface_id;
    return img;
}

void qxl_image_put(struct qxl_image *img)
{
    if (img)
        qxl_obj_unref(img);
}
