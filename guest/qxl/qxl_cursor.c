/* Cursor ring commands: SET (alpha or mono shape), MOVE, HIDE. */
#include "qxl/qxl_draw.h"

#include "lib/string.h"

static struct qxl_cursor_cmd *cursor_cmd(struct qxl_device *q, uint8_t type)
{
    struct qxl_cursor_cmd *c = qxl_alloc(q, sizeof(*c), QXL_OBJ_CURSOR_CMD);
    if (c) {
        memset(c, 0, sizeof(*c));
        c->type = type;
    }
    return c;
}

static int cursor_set(struct qxl_device *q, uint16_t type, const void *data, uint32_t size,
                      uint16_t w, uint16_t h, uint16_t hot_x, uint16_t hot_y, int16_t x,
                      int16_t y)
{
    if (!w || !h || hot_x >= w || hot_y >= h)
        return QXL_EINVAL;
    struct qxl_cursor *shape = qxl_alloc(q, sizeof(*shape) + size, QXL_OBJ_CURSOR_SHAPE);
    if (!shape)
        return QXL_ENOMEM;
    memset(shape, 0, sizeof(*shape));
    shape->header.unique = q->image_unique++;
    shape->header.type = type;
    shape->header.width = w;
    shape->header.height = h;
    shape->header.hot_spot_x = hot_x;
    shape->header.hot_spot_y = hot_y;
    shape->data_size = size;
    shape->chunk.data_size = size;
    memcpy(shape->chunk.data, data, size);
    struct qxl_cursor_cmd *c = cursor_cmd(q, QXL_CURSOR_SET);
    if (!c) {
        qxl_obj_unref(shape);
        return QXL_ENOMEM;
    }
    c->u.set.position.x = x;
    c->u.set.position.y = y;
    c->u.set.visible = 1;
    c->u.set.shape = qxl_phys(q, shape);
    qxl_obj_attach(c, shape);
    qxl_obj_unref(shape);
    return qxl_push_cursor_command(q, c);
}

int qxl_cursor_set_alpha(struct qxl_device *q, const uint32_t *argb, uint16_t w, uint16_t h,
                         uint16_t hot_x, uint16_t hot_y, int16_t x, int16_t y)
{
    return cursor_set(q, QXL_CURSOR_ALPHA, argb, (uint32_t)w * h * 4, w, h, hot_x, hot_y, x, y);
}

int qxl_cursor_set_mono(struct qxl_device *q, const uint8_t *and_xor, uint16_t w, uint16_t h,
                        uint16_t hot_x, uint16_t hot_y, int16_t x, int16_t y)
{
    return cursor_set(q, QXL_CURSOR_MONO, and_xor, 2u * h * ((w + 7u) / 8), w, h, hot_x, hot_y,
                      x, y);
}

int qxl_cursor_move(struct qxl_device *q, int16_t x, int16_t y)
{
    struct qxl_cursor_cmd *c = cursor_cmd(q, QXL_CURSOR_MOVE);
    if (!c)
        return QXL_ENOMEM;
    c->u.position.x = x;
    c->u.position.y = y;
    return qxl_push_cursor_command(q, c);
}

int qxl_cursor_hide(struct qxl_device *q)
{
    struct qxl_cursor_cmd *c = cursor_cmd(q, QXL_CURSOR_HIDE);
    if (!c)
        return QXL_ENOMEM;
    return qxl_push_cursor_command(q, c);
}
