/* Primary and off-screen surfaces, UPDATE_AREA, monitors config.  See qxl.h. */
#include "qxl/qxl.h"

#include "lib/console.h"
#include "lib/string.h"

uint32_t qxl_format_bpp(uint32_t format)
{
    switch (format) {
    case QXL_SURF_FMT_32_xRGB:
    case QXL_SURF_FMT_32_ARGB:
        return 4;
    case QXL_SURF_FMT_16_555:
    case QXL_SURF_FMT_16_565:
        return 2;
    case QXL_SURF_FMT_8_A:
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- primary */

int qxl_create_primary(struct qxl_device *q, uint32_t width, uint32_t height,
                       uint32_t format, bool async)
{
    uint32_t bpp = qxl_format_bpp(format);
    if (!bpp || format == QXL_SURF_FMT_8_A || !width || !height)
        return QXL_EINVAL;
    uint32_t stride = (width * bpp + 3) & ~3u;
    if ((uint64_t)stride * height > q->rom->surface0_area_size)
        return QXL_EINVAL;
    if (q->primary.live) {
        int rc = qxl_destroy_primary(q, async);
        if (rc != QXL_OK)
            return rc;
    }
    uint8_t *mem = q->bar0 + q->rom->draw_area_offset;
    volatile struct qxl_surface_create *c = &q->ram->create_surface;
    c->width = width;
    c->height = height;
    c->stride = (int32_t)stride;
    c->format = format;
    c->position = 0;
    c->mouse_mode = 1;
    c->flags = 0;
    c->type = 0; /* primary */
    c->mem = qxl_phys(q, mem);
    int rc;
    if (async) {
        rc = qxl_io_async(q, QXL_IO_CREATE_PRIMARY_ASYNC, 0);
    } else {
        qxl_io(q, QXL_IO_CREATE_PRIMARY, 0);
        rc = q->guest_bug ? QXL_EGUESTBUG : QXL_OK;
    }
    if (rc != QXL_OK)
        return rc;
    q->primary = (struct qxl_surface){.live = true, .id = 0, .width = width, .height = height,
                                      .format = format, .stride = (int32_t)stride, .mem = mem};
    return QXL_OK;
}

int qxl_destroy_primary(struct qxl_device *q, bool async)
{
    if (!q->primary.live)
        return QXL_OK;
    q->primary.live = false;
    if (async)
        return qxl_io_async(q, QXL_IO_DESTROY_PRIMARY_ASYNC, 0);
    qxl_io(q, QXL_IO_DESTROY_PRIMARY, 0);
    return q->guest_bug ? QXL_EGUESTBUG : QXL_OK;
}

/* --------------------------------------------------------------- off-screen */

struct qxl_surface *qxl_surface_get(struct qxl_device *q, uint32_t id)
{
    if (id == 0)
        return q->primary.live ? &q->primary : 0;
    if (id >= QXL_MAX_SURFACES || !q->surfaces[id].live)
        return 0;
    return &q->surfaces[id];
}

static struct qxl_surface_cmd *surface_cmd(struct qxl_device *q, uint32_t id, uint8_t type)
{
    struct qxl_surface_cmd *c = qxl_alloc(q, sizeof(*c), QXL_OBJ_SURFACE_CMD);
    if (!c)
        return 0;
    memset(c, 0, sizeof(*c));
    c->surface_id = id;
    c->type = type;
    return c;
}

int qxl_surface_create(struct qxl_device *q, uint32_t width, uint32_t height, uint32_t format)
{
    uint32_t bpp = qxl_format_bpp(format);
    if (!bpp || !width || !height || width > 8192 || height > 8192)
        return QXL_EINVAL;
    uint32_t id = 1;
    while (id < QXL_MAX_SURFACES && (q->surfaces[id].live || id >= q->rom->n_surfaces))
        id++;
    if (id >= QXL_MAX_SURFACES || id >= q->rom->n_surfaces)
        return QXL_ENOMEM;
    uint32_t stride = (width * bpp + 3) & ~3u;
    uint8_t *mem = qxl_alloc_vram(q, (size_t)stride * height, QXL_OBJ_SURFACE_MEM);
    if (!mem)
        return QXL_ENOMEM;
    struct qxl_surface_cmd *c = surface_cmd(q, id, QXL_SURFACE_CMD_CREATE);
    if (!c) {
        qxl_obj_unref(mem);
        return QXL_ENOMEM;
    }
    c->u.format = format;
    c->u.width = width;
    c->u.height = height;
    c->u.stride = (int32_t)stride;
    c->u.data = qxl_phys(q, mem);
    int rc = qxl_push_command(q, QXL_CMD_SURFACE, c);
    if (rc != QXL_OK) {
        qxl_obj_unref(mem);
        return rc;
    }
    q->surfaces[id] = (struct qxl_surface){.live = true, .id = id, .width = width,
                                           .height = height, .format = format,
                                           .stride = (int32_t)stride, .mem = mem,
                                           .mem_obj = mem};
    return (int)id;
}

int qxl_surface_destroy(struct qxl_device *q, uint32_t id)
{
    struct qxl_surface *s = qxl_surface_get(q, id);
    if (!s || id == 0)
        return QXL_EINVAL;
    struct qxl_surface_cmd *c = surface_cmd(q, id, QXL_SURFACE_CMD_DESTROY);
    if (!c)
        return QXL_ENOMEM;
    /* the memory must outlive the device's use of the surface: it goes back
     * with the destroy command */
    qxl_obj_attach(c, s->mem_obj);
    qxl_obj_unref(s->mem_obj);
    s->live = false;
    return qxl_push_command(q, QXL_CMD_SURFACE, c);
}

/* ------------------------------------------------------------- update area */

int qxl_update_area(struct qxl_device *q, uint32_t surface_id, const struct qxl_rect *area,
                    bool async)
{
    q->ram->update_area.top = area->top;
    q->ram->update_area.left = area->left;
    q->ram->update_area.bottom = area->bottom;
    q->ram->update_area.right = area->right;
    q->ram->update_surface = surface_id;
    if (async)
        return qxl_io_async(q, QXL_IO_UPDATE_AREA_ASYNC, 0);
    qxl_io(q, QXL_IO_UPDATE_AREA, 0);
    return q->guest_bug ? QXL_EGUESTBUG : QXL_OK;
}

/* ---------------------------------------------------------------- monitors */

int qxl_monitors_config(struct qxl_device *q, const struct qxl_head *heads, uint16_t count)
{
    size_t size = sizeof(struct qxl_monitors_config) + count * sizeof(struct qxl_head);
    struct qxl_monitors_config *mc = qxl_alloc(q, size, QXL_OBJ_MONITORS);
    if (!mc)
        return QXL_ENOMEM;
    mc->count = count;
    mc->max_allowed = count;
    memcpy(mc->heads, heads, count * sizeof(struct qxl_head));
    q->ram->monitors_config = qxl_phys(q, mc);
    int rc = qxl_io_async(q, QXL_IO_MONITORS_CONFIG_ASYNC, 0);
    /* the server reads the config during the call; it keeps no pointer */
    q->ram->monitors_config = 0;
    qxl_obj_unref(mc);
    return rc;
}

uint32_t qxl_crc32(const void *data, uint32_t len)
{
    /* reflected polynomial 0xedb88320 as Linux's crc32_le(0, ...): start 0,
     * no final inversion (QEMU undoes zlib's two inversions to match) */
    const uint8_t *p = data;
    uint32_t crc = 0;
    while (len--) {
        crc ^= *p++;
        for (int i = 0; i < 8; i++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    return crc;
}

bool qxl_client_monitors(const struct qxl_device *q, struct qxl_client_heads *out)
{
    /* copy first: the device may rewrite the block while we look at it */
    uint8_t block[sizeof(q->rom->client_monitors_config)];
    uint32_t crc = q->rom->client_monitors_config_crc;
    memcpy(block, (const void *)&q->rom->client_monitors_config, sizeof(block));
    bool blank = crc == 0;
    for (uint32_t i = 0; blank && i < sizeof(block); i++)
        blank = block[i] == 0;
    /* the device leaves everything zero until a client sends a layout */
    if (!blank && qxl_crc32(block, sizeof(block)) != crc)
        return false;
    uint16_t count;
    memcpy(&count, block, 2);
    if (count > QXL_MAX_CLIENT_HEADS)
        return false;
    out->count = count;
    memcpy(out->heads, block + 4, count * sizeof(struct qxl_urect));
    return true;
}

void qxl_poll_events(struct qxl_device *q)
{
    uint32_t n = q->client_monitors_count;
    if (n == q->client_monitors_handled)
        return;
    q->client_monitors_handled = n;
    struct qxl_client_heads heads;
    if (!qxl_client_monitors(q, &heads)) {
        printf("qxl: client monitors config with a bad CRC, ignored\n");
        return;
    }
    if (q->on_client_monitors)
        q->on_client_monitors(q, &heads);
}
