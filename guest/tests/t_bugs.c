/* Suite bugs: deliberate guest bugs raise ERROR, the device stops taking
 * commands, RESET recovers it. */
#include "lib/io.h"
#include "lib/string.h"
#include "suite.h"

/* after the bug: ERROR seen, then RESET and a working draw */
static bool recovers(const char *what)
{
    bool err = t_wait_error(1000);
    if (!err)
        diag("%s: no ERROR interrupt", what);
    int rc = qxl_reset(&qxl);
    if (rc == QXL_OK && !t_ready())
        rc = QXL_EINVAL;
    struct qxl_rect r = qxl_rect_xywh(0, 0, 16, 16);
    uint32_t want[256], got[256];
    for (int i = 0; i < 256; i++)
        want[i] = 0x00aa55;
    bool draws = rc == QXL_OK && qxl_fill(&qxl, 0, &r, 0x00aa55, QXL_ROPD_OP_PUT) == QXL_OK &&
                 t_read(0, &r, got) && !memcmp(got, want, sizeof(got));
    if (!draws)
        diag("%s: no drawing after RESET", what);
    return err && draws;
}

static struct qxl_surface_cmd *surface_create_cmd(uint32_t id, int32_t stride)
{
    struct qxl_surface_cmd *c = qxl_alloc(&qxl, sizeof(*c), QXL_OBJ_SURFACE_CMD);
    uint8_t *mem = qxl_alloc_vram(&qxl, 64 * 64 * 4, QXL_OBJ_SURFACE_MEM);
    if (!c || !mem)
        return 0;
    memset(c, 0, sizeof(*c));
    c->surface_id = id;
    c->type = QXL_SURFACE_CMD_CREATE;
    c->u.format = QXL_SURF_FMT_32_xRGB;
    c->u.width = 64;
    c->u.height = 64;
    c->u.stride = stride;
    c->u.data = qxl_phys(&qxl, mem);
    qxl_obj_attach(c, mem);
    qxl_obj_unref(mem);
    return c;
}

static void run_bugs(void)
{
    if (!t_ready())
        return;
    /* a surface command addressed through slot 5, which was never added */
    struct qxl_surface_cmd *c = surface_create_cmd(1, 256);
    qxl_phys_t bad = (5ull << 56) | (uint64_t)((uint8_t *)c - qxl.main_start);
    qxl_push_command_at(&qxl, QXL_CMD_SURFACE, c, bad);
    t_ok(recovers("bad slot"), "bugs: a command in an inactive memory slot raises ERROR; "
                               "RESET recovers");

    c = surface_create_cmd(qxl.rom->n_surfaces + 5, 256);
    qxl_push_command(&qxl, QXL_CMD_SURFACE, c);
    t_ok(recovers("bad surface id"), "bugs: surface id %u (of %u) raises ERROR; RESET recovers",
         qxl.rom->n_surfaces + 5, qxl.rom->n_surfaces);

    c = surface_create_cmd(1, 254);
    qxl_push_command(&qxl, QXL_CMD_SURFACE, c);
    t_ok(recovers("bad surface stride"),
         "bugs: off-screen surface stride 254 (not a multiple of 4) raises ERROR");

    qxl_destroy_primary(&qxl, false);
    volatile struct qxl_surface_create *cs = &qxl.ram->create_surface;
    cs->width = 640;
    cs->height = 480;
    cs->stride = 640 * 4 + 2;
    cs->format = QXL_SURF_FMT_32_xRGB;
    cs->mem = qxl_phys(&qxl, qxl.bar0);
    qxl_io(&qxl, QXL_IO_CREATE_PRIMARY, 0);
    t_ok(recovers("bad primary stride"),
         "bugs: primary stride 2562 raises ERROR; RESET recovers");

    qxl.ram->update_area.top = 50;
    qxl.ram->update_area.bottom = 10;
    qxl.ram->update_area.left = 0;
    qxl.ram->update_area.right = 10;
    qxl.ram->update_surface = 0;
    qxl_io(&qxl, QXL_IO_UPDATE_AREA, 0);
    t_ok(recovers("inverted update area"), "bugs: UPDATE_AREA of an inverted rectangle raises "
                                           "ERROR");

    /* a rejected async request never completes: the driver's wait must end
     * at the ERROR, not at its 5 s timeout */
    struct qxl_rect inverted = {50, 0, 10, 10};
    uint64_t t0 = pit_uptime_ms();
    int rc = qxl_update_area(&qxl, 0, &inverted, true);
    uint32_t waited = (uint32_t)(pit_uptime_ms() - t0);
    t_ok(rc == QXL_EGUESTBUG && waited < 2000 && recovers("inverted async update area"),
         "bugs: UPDATE_AREA_ASYNC of an inverted rectangle: ERROR ends the wait (%s after "
         "%u ms); RESET recovers", qxl_strerror(rc), waited);

    qxl_io(&qxl, QXL_IO_DETACH_PRIMARY, 0);
    t_ok(recovers("unimplemented port"), "bugs: the unimplemented DETACH_PRIMARY port raises "
                                         "ERROR");

    /* while the bug stands, nothing is taken from the command ring */
    qxl_io(&qxl, QXL_IO_ATTACH_PRIMARY, 0);
    t_wait_error(1000);
    uint32_t cons = qxl.ram->cmd_ring.h.cons;
    struct qxl_rect r = qxl_rect_xywh(0, 0, 8, 8);
    struct qxl_drawable *d = qxl_drawable_new(&qxl, 0, QXL_DRAW_FILL, &r, QXL_EFFECT_OPAQUE);
    bool stalled = false;
    if (d) {
        d->u.fill.brush.type = QXL_BRUSH_SOLID;
        d->u.fill.rop_descriptor = QXL_ROPD_OP_PUT;
        /* bypass the driver's own guest-bug check to see the device's */
        volatile struct qxl_cmd_ring *ring = (volatile struct qxl_cmd_ring *)&qxl.ram->cmd_ring;
        d->release_info.id = qxl_release_id(&qxl, d);
        ring->items[ring->h.prod % QXL_CMD_RING_SLOTS].data = qxl_phys(&qxl, d);
        ring->items[ring->h.prod % QXL_CMD_RING_SLOTS].type = QXL_CMD_DRAW;
        ring->h.prod++;
        outb(qxl.io + QXL_IO_NOTIFY_CMD, 0);
        pit_sleep_ms(200);
        stalled = qxl.ram->cmd_ring.h.cons == cons;
    }
    t_ok(stalled && recovers("stalled ring"),
         "bugs: in the guest-bug state the command ring is not consumed until RESET");
}

const struct suite suite_bugs = {"bugs", 8, run_bugs,
                                 "guest bugs raise ERROR; recovery through RESET"};
