/* Suites cursor and monitors: cursor ring commands and monitor layouts. */
#include "lib/string.h"
#include "suite.h"

static bool cursor_idle(void *ctx)
{
    (void)ctx;
    return qxl.ram->cursor_ring.h.cons == qxl.ram->cursor_ring.h.prod;
}

static bool cursor_taken(void)
{
    return qxl_wait(cursor_idle, 0, 2000) && !qxl.guest_bug;
}

/* Cursor commands the device still holds, after giving it time to release
 * what it is done with (only the SET that defines the cursor stays). */
static uint32_t cursor_cmds_held(void)
{
    uint32_t live = 0;
    for (int i = 0; i < 100; i++) {
        qxl_flush_releases(&qxl);
        live = qxl.ram_arena.live_by_kind[QXL_OBJ_CURSOR_CMD];
        if (live <= 1)
            break;
        pit_sleep_ms(10);
    }
    return live;
}

static void run_cursor(void)
{
    if (!t_ready())
        return;
    static uint32_t argb[32 * 32];
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            /* a premultiplied arrow-ish wedge with a soft edge */
            uint32_t a = x <= y ? (x == y ? 0x80 : 0xff) : 0;
            uint32_t c = (a * 0x20) / 0xff;
            argb[y * 32 + x] = (a << 24) | (c << 16) | (c << 8) | c;
        }
    int rc = qxl_cursor_set_alpha(&qxl, argb, 32, 32, 0, 0, 100, 100);
    t_ok(rc == QXL_OK && cursor_taken(), "cursor: SET with a 32x32 ALPHA shape is taken");

    static uint8_t mono[2 * 16 * 2];
    for (int y = 0; y < 16; y++) {
        uint16_t shape = (uint16_t)(0xffff << (15 - y));
        mono[y * 2] = (uint8_t)~(shape >> 8); /* AND mask: 0 where the cursor is */
        mono[y * 2 + 1] = (uint8_t)~shape;
        mono[32 + y * 2] = (uint8_t)(shape >> 8); /* XOR mask: white there */
        mono[32 + y * 2 + 1] = (uint8_t)shape;
    }
    rc = qxl_cursor_set_mono(&qxl, mono, 16, 16, 1, 1, 50, 60);
    t_ok(rc == QXL_OK && cursor_taken(), "cursor: SET with a 16x16 MONO shape is taken");

    /* more MOVEs than the ring holds: every one is taken and given back */
    bool moved = true;
    uint32_t pushed = qxl.stats.cursor_cmds;
    for (int i = 0; i < 40 && moved; i++)
        moved = qxl_cursor_move(&qxl, (int16_t)(i * 15), (int16_t)(i * 10)) == QXL_OK;
    pushed = qxl.stats.cursor_cmds - pushed;
    bool taken = moved && cursor_taken();
    uint32_t held = cursor_cmds_held();
    t_ok(taken && pushed == 40 && held <= 1,
         "cursor: 40 MOVE commands through the 32-slot cursor ring are taken and released "
         "(%u cursor commands still held)", held);
    rc = qxl_cursor_hide(&qxl);
    t_ok(rc == QXL_OK && cursor_taken(), "cursor: HIDE is taken");

    /* the device gives cursor commands back once they are replaced */
    for (int i = 0; i < 5; i++)
        qxl_cursor_set_alpha(&qxl, argb, 32, 32, 0, 0, (int16_t)(10 * i), 20);
    cursor_taken();
    uint32_t live = cursor_cmds_held();
    t_ok(live <= 1, "cursor: replaced cursor commands are released (%u still held)", live);
}

const struct suite suite_cursor = {"cursor", 5, run_cursor,
                                   "cursor SET (alpha, mono), MOVE, HIDE, releases"};

static void run_monitors(void)
{
    if (!t_ready())
        return;
    struct qxl_head one = {.id = 0, .surface_id = 0, .width = 640, .height = 480};
    uint32_t io = qxl.io_cmd_count;
    int rc = qxl_monitors_config(&qxl, &one, 1);
    t_ok(rc == QXL_OK && qxl.io_cmd_count == io + 1 && !qxl.guest_bug,
         "monitors: MONITORS_CONFIG_ASYNC with one head completes (IO_CMD)");
    struct qxl_head two[2] = {{.id = 0, .width = 320, .height = 480},
                              {.id = 1, .width = 320, .height = 480, .x = 320}};
    rc = qxl_monitors_config(&qxl, two, 2);
    t_ok(rc == QXL_OK && !qxl.guest_bug, "monitors: two heads side by side on the primary");
    rc = qxl_monitors_config(&qxl, &one, 1);
    struct qxl_client_heads heads;
    bool crc = qxl_client_monitors(&qxl, &heads);
    t_ok(rc == QXL_OK && crc && heads.count <= QXL_MAX_CLIENT_HEADS,
         "monitors: back to one head; the ROM's client config (%u heads) has a valid CRC",
         heads.count);
}

const struct suite suite_monitors = {"monitors", 3, run_monitors,
                                     "guest monitors config, client config in the ROM"};
