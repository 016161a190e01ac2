/* Suites ring, irq, release: a full command ring, out-of-memory, doorbells,
 * interrupts and masking, the release ring giving everything back. */
#include "lib/alloc.h"
#include "lib/io.h"
#include "lib/string.h"
#include "suite.h"

/* ----------------------------------------------------------------- ring */

static void run_ring(void)
{
    if (!t_ready())
        return;
    struct qxl_rect all = qxl_rect_xywh(0, 0, 640, 480);
    uint32_t waits = qxl.stats.ring_full_waits, cmds = qxl.stats.cmds;
    uint32_t doorbells = qxl.stats.notify_cmd, displays = qxl.display_count;
    bool pushed = true;
    uint32_t last = 0;
    for (uint32_t i = 0; i < 400 && pushed; i++) {
        last = 0x010203u * (i & 0x3f);
        pushed = qxl_fill(&qxl, 0, &all, last, QXL_ROPD_OP_PUT) == QXL_OK;
    }
    waits = qxl.stats.ring_full_waits - waits;
    cmds = qxl.stats.cmds - cmds;
    doorbells = qxl.stats.notify_cmd - doorbells;
    displays = qxl.display_count - displays;
    struct qxl_rect r = qxl_rect_xywh(300, 200, 8, 8);
    uint32_t want[64];
    for (int i = 0; i < 64; i++)
        want[i] = last;
    bool good = pushed && t_check("ring-full", 0, &r, want);
    diag("ring: 400 full-screen fills: %u waits for a full ring, %u DISPLAY interrupts, "
         "%u doorbells", waits, displays, doorbells);
    t_ok(good && waits > 0 && displays > 0,
         "ring: a full command ring is waited out on the DISPLAY interrupt (%u waits)", waits);
    /* an idle device (ring drained, polled once more) arms notify_on_prod;
     * the next push must ring NOTIFY_CMD, and only that one */
    t_wait_idle(2000);
    pit_sleep_ms(200);
    volatile struct qxl_ring_hdr *h = &qxl.ram->cmd_ring.h;
    bool armed = h->notify_on_prod == h->prod + 1;
    uint32_t rung = qxl.stats.notify_cmd;
    qxl_fill(&qxl, 0, &r, 0x0a0b0c, QXL_ROPD_OP_PUT);
    rung = qxl.stats.notify_cmd - rung;
    bool taken = t_wait_idle(1000);
    t_ok(armed && rung == 1 && taken && doorbells < cmds,
         "ring: the idle device arms notify_on_prod, the next push rings NOTIFY_CMD "
         "(%u doorbells in the 400 pushes above)", doorbells);

    /* out of memory: cap the page area so the server must give drawables
     * back before the driver can go on; the 20x15 grid of 32x32 copies
     * does not overlap, so nothing is released without NOTIFY_OOM */
    qxl_fill(&qxl, 0, &all, 0, QXL_ROPD_OP_PUT);
    t_wait_idle(2000);
    qxl_flush_releases(&qxl);
    uint32_t ooms = qxl.stats.oom_notifies;
    qxl.ram_arena.limit = qxl.ram_arena.live_bytes + 40 * 1024;
    uint32_t tile[32 * 32];
    good = true;
    for (int i = 0; i < 300 && good; i++) {
        for (int k = 0; k < 32 * 32; k++)
            tile[k] = 0x000100u * (uint32_t)i + (uint32_t)k;
        struct qxl_image *img = qxl_image_bitmap(&qxl, QXL_BITMAP_32BIT, 32, 32, tile, 128, 0,
                                                 0, false);
        struct qxl_rect dst = qxl_rect_xywh((i % 20) * 32, (i / 20) * 32, 32, 32);
        struct qxl_rect area = qxl_rect_xywh(0, 0, 32, 32);
        good = img && qxl_copy(&qxl, 0, &dst, img, &area, QXL_ROPD_OP_PUT,
                               QXL_SCALE_NEAREST) == QXL_OK;
        qxl_image_put(img);
    }
    qxl.ram_arena.limit = 0;
    ooms = qxl.stats.oom_notifies - ooms;
    /* cell 299 (bottom right) holds the last tile */
    struct qxl_rect cell = qxl_rect_xywh(19 * 32, 14 * 32, 32, 32);
    good = good && t_check("oom-last-cell", 0, &cell, tile);
    t_ok(good && ooms > 0,
         "ring: 300 copies in a 40 KiB cap: allocation waits out NOTIFY_OOM (%u times)", ooms);
}

const struct suite suite_ring = {"ring", 3, run_ring,
                                 "full command ring, doorbells, out of memory"};

/* ------------------------------------------------------------------ irq */

static bool cursor_ring_drained(void *ctx)
{
    (void)ctx;
    return qxl.ram->cursor_ring.h.cons == qxl.ram->cursor_ring.h.prod;
}

static void run_irq(void)
{
    if (!t_ready())
        return;
    struct qxl_rect r = qxl_rect_xywh(0, 0, 64, 64);
    uint32_t io = qxl.io_cmd_count, irqs = qxl.stats.irq_bits[2];
    int rc = qxl_update_area(&qxl, 0, &r, true);
    t_ok(rc == QXL_OK && qxl.io_cmd_count == io + 1 && qxl.stats.irq_bits[2] == irqs + 1 &&
             !(qxl.ram->int_pending & QXL_INT_IO_CMD),
         "irq: an async UPDATE_AREA completes with one IO_CMD interrupt, cleared by the handler");

    /* masked: the event is latched in int_pending but the line stays low */
    qxl_set_irq_mask(&qxl, QXL_INT_ALL & ~QXL_INT_IO_CMD);
    io = qxl.io_cmd_count;
    qxl_io(&qxl, QXL_IO_UPDATE_AREA_ASYNC, 0);
    pit_sleep_ms(200);
    bool latched = qxl.io_cmd_count == io && (qxl.ram->int_pending & QXL_INT_IO_CMD);
    qxl_set_irq_mask(&qxl, QXL_INT_ALL);
    bool delivered = qxl_wait_counter(&qxl.io_cmd_count, io, 1000);
    t_ok(latched && delivered,
         "irq: with IO_CMD masked the event waits in int_pending; unmasking delivers it");

    /* DISPLAY from the release ring: arm notify_on_prod, FLUSH_RELEASE (at a
     * quiet moment: after UPDATE_AREA the display worker is idle, so the
     * push cannot race with its releases) */
    for (int i = 0; i < 8; i++)
        qxl_fill(&qxl, 0, &r, 0x111111u * (uint32_t)i, QXL_ROPD_OP_PUT);
    t_wait_idle(1000);
    qxl_update_area(&qxl, 0, &r, false);
    qxl_reclaim(&qxl);
    uint32_t disp = qxl.display_count;
    qxl.ram->release_ring.h.notify_on_prod = qxl.ram->release_ring.h.prod + 1;
    qxl_io(&qxl, QXL_IO_FLUSH_RELEASE, 0);
    bool got = qxl_wait_counter(&qxl.display_count, disp, 1000);
    uint32_t freed = qxl_reclaim(&qxl);
    t_ok(got && freed > 0,
         "irq: a release ring push at notify_on_prod raises DISPLAY (%u objects back)", freed);

    /* DISPLAY from the command ring: notify_on_cons one ahead */
    disp = qxl.display_count;
    qxl.ram->cmd_ring.h.notify_on_cons = qxl.ram->cmd_ring.h.cons + 1;
    qxl_fill(&qxl, 0, &r, 0x445566, QXL_ROPD_OP_PUT);
    got = qxl_wait_counter(&qxl.display_count, disp, 1000);
    t_ok(got, "irq: the device taking a command at notify_on_cons raises DISPLAY");

    /* CURSOR from the cursor ring the same way */
    uint32_t cur = qxl.cursor_count;
    qxl.ram->cursor_ring.h.notify_on_cons = qxl.ram->cursor_ring.h.cons + 1;
    qxl_cursor_move(&qxl, 10, 10);
    got = qxl_wait_counter(&qxl.cursor_count, cur, 1000);
    qxl_wait(cursor_ring_drained, 0, 1000);
    t_ok(got, "irq: the cursor ring at notify_on_cons raises CURSOR");

    /* a RESET restarts the device's display: it reports the client again */
    uint32_t clients = qxl.client_count;
    qxl_reset(&qxl);
    got = qxl_wait_counter(&qxl.client_count, clients, 1000);
    t_ok(got, "irq: after RESET the device reports the client state again (CLIENT, "
              "client_present %u)", qxl.rom->client_present);
    diag("irq: interrupt bits seen so far: %02x", qxl.irq_pending_seen);
}

const struct suite suite_irq = {"irq", 6, run_irq,
                                "DISPLAY/CURSOR/IO_CMD interrupts, masking, UPDATE_IRQ"};

/* -------------------------------------------------------------- release */

static bool arena_whole(const struct qxl_arena *a)
{
    size_t span = a->end - a->base;
    return a->live_objects == 0 && a->live_bytes == 0 && qxl_arena_free_bytes(a) == span &&
           qxl_arena_largest_free(a) + 32 == span;
}

static void run_release(void)
{
    if (!t_ready())
        return;
    /* many small drawables that the next full fill occludes: the server
     * releases them in batches chained through release_info */
    struct qxl_rect all = qxl_rect_xywh(0, 0, 640, 480);
    uint32_t batches = qxl.stats.release_batches, released = qxl.stats.released;
    for (int i = 0; i < 100; i++) {
        struct qxl_rect r = qxl_rect_xywh((i % 10) * 8, (i / 10) * 8, 8, 8);
        qxl_fill(&qxl, 0, &r, 0x102030u + (uint32_t)i, QXL_ROPD_OP_PUT);
    }
    qxl_fill(&qxl, 0, &all, 0x000000, QXL_ROPD_OP_PUT);
    t_wait_idle(2000);
    qxl_update_area(&qxl, 0, &all, false);
    qxl_flush_releases(&qxl);
    batches = qxl.stats.release_batches - batches;
    released = qxl.stats.released - released;
    t_ok(released >= 100 && batches > 0 && released > batches,
         "release: %u objects came back in %u release ring entries (release_info chains)",
         released, batches);

    /* give everything back: destroy every surface, flush, drain */
    for (uint32_t id = 1; id < QXL_MAX_SURFACES; id++)
        if (qxl_surface_get(&qxl, id))
            qxl_surface_destroy(&qxl, id);
    qxl_cursor_hide(&qxl);
    qxl_destroy_primary(&qxl, false);
    qxl_io_async(&qxl, QXL_IO_DESTROY_ALL_SURFACES_ASYNC, 0);
    uint32_t live = qxl_live_objects(&qxl);
    for (int i = 0; i < 200 && live; i++) {
        qxl_flush_releases(&qxl);
        live = qxl_live_objects(&qxl);
        if (live)
            pit_sleep_ms(10);
    }
    if (live)
        for (int k = 1; k < QXL_OBJ_KINDS; k++)
            if (qxl.ram_arena.live_by_kind[k] + qxl.vram_arena.live_by_kind[k])
                diag("release: %u live objects of kind %d", qxl.ram_arena.live_by_kind[k] +
                     qxl.vram_arena.live_by_kind[k], k);
    diag("release: %u allocations since the last reset; in all %u released by the device, "
         "%u dropped by %u resets, %u bad ids, %u bad unrefs",
         qxl.ram_arena.allocs + qxl.vram_arena.allocs, qxl.stats.released,
         qxl.stats.dropped_by_reset, qxl.stats.resets, qxl.stats.bad_release_ids,
         qxl_obj_bad_unrefs());
    /* nothing live, and every block back where it came from: each arena is
     * one free block again (a block lost by the coalescing free would show) */
    bool whole = arena_whole(&qxl.ram_arena) && arena_whole(&qxl.vram_arena);
    t_ok(live == 0 && whole && qxl.stats.bad_release_ids == 0 && qxl_obj_bad_unrefs() == 0,
         "release: after destroying every surface the allocator has %u leaked objects, both "
         "arenas whole again, no bad ids or double frees", live);

    /* a release id whose address is a live drawable but whose sequence is
     * not the one handed out (a late or repeated id): counted, and the
     * object is not freed under its owner.  The drawable goes to the ring
     * by hand, alone in its release batch (nothing else is outstanding),
     * so the chain the bad id cuts holds nothing else. */
    bool spared = false;
    uint32_t bad = qxl.stats.bad_release_ids;
    int rc = qxl_create_primary(&qxl, 640, 480, QXL_SURF_FMT_32_xRGB, false);
    struct qxl_rect r = qxl_rect_xywh(0, 0, 8, 8);
    struct qxl_drawable *d = rc == QXL_OK ? qxl_drawable_new(&qxl, 0, QXL_DRAW_FILL, &r,
                                                             QXL_EFFECT_OPAQUE) : 0;
    if (d) {
        d->u.fill.brush.type = QXL_BRUSH_SOLID;
        d->u.fill.rop_descriptor = QXL_ROPD_OP_PUT;
        d->release_info.id = (0x5a5aull << 32) | (uint32_t)(uintptr_t)d;
        volatile struct qxl_cmd_ring *ring = (volatile struct qxl_cmd_ring *)&qxl.ram->cmd_ring;
        uint32_t prod = ring->h.prod;
        ring->items[prod % QXL_CMD_RING_SLOTS].data = qxl_phys(&qxl, d);
        ring->items[prod % QXL_CMD_RING_SLOTS].type = QXL_CMD_DRAW;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        ring->h.prod = prod + 1;
        qxl_io(&qxl, QXL_IO_NOTIFY_CMD, 0);
        t_wait_idle(2000);
        qxl_destroy_primary(&qxl, false);
        for (int i = 0; i < 100 && qxl.stats.bad_release_ids == bad; i++) {
            qxl_flush_releases(&qxl);
            if (qxl.stats.bad_release_ids == bad)
                pit_sleep_ms(10);
        }
        spared = qxl_obj_valid(d) && qxl_obj_kind(d) == QXL_OBJ_DRAWABLE;
        qxl_obj_unref(d);
    }
    bad = qxl.stats.bad_release_ids - bad;
    live = qxl_live_objects(&qxl);
    t_ok(d && bad == 1 && spared && live == 0 && !qxl.guest_bug,
         "release: an id with the wrong sequence is counted (%u) and frees nothing "
         "(%u objects live after freeing the drawable by hand)", bad, live);
}

const struct suite suite_release = {"release", 3, run_release,
                                    "release ring chains; zero leaked objects; stale ids"};
