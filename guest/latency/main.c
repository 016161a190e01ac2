/* latency: the guest side of tools/bench_latency.py -- one draw per key.
 *
 * Creates a primary (width=, height= on the command line; 800x600 by
 * default) painted with one background fill, then waits for PS/2 keys.
 * Every key press (make code; releases are ignored) is iteration n = 1, 2,
 * ...: the driver builds one DRAW_FILL of colour latency_color(n) over
 * latency_rect(n), writes the marker byte 0x01 to COM1, and pushes the
 * command the way the driver always does (ring push, NOTIFY_CMD only when
 * the device asked for it with notify_on_prod).  It reports on COM1:
 *
 *   latency: ready WxH
 *   latency: fill N color 0xRRGGBB at X,Y notify D
 *
 * where D is 1 if the push rang the doorbell, 0 if the device was polling
 * the ring.  The marker byte is written immediately before the push so the
 * host can timestamp "the guest submits" from the serial stream on any
 * machine that carries COM1 to a pipe; it is the only 0x01 byte the guest
 * ever writes.  The "fill" line waits for the key's release: printing it
 * costs one port write per byte, which must not compete with the device
 * and the server while they carry the fill to the client.
 *
 * The fill happens in the main flow as soon as the keyboard interrupt has
 * woken it (the interrupt handler only queues the key), as a real driver's
 * bottom half would: drawing may wait for ring space or device memory,
 * which an interrupt handler must not do.
 *
 * The colour and rectangle formulas are mirrored in tools/bench_latency.py.
 */
#include "lib/console.h"
#include "lib/cpu.h"
#include "lib/multiboot.h"
#include "lib/serial.h"
#include "ps2/ps2.h"
#include "qxl/qxl.h"
#include "qxl/qxl_draw.h"

#define MARKER 0x01
#define BACKGROUND 0x202428
#define CELL 32

static uint32_t width, height;
static char report[96]; /* the last iteration's line, printed on the key's release */

/* Never the background, never twice in a row: the host checks that the
 * DRAW_FILL it receives is the one for the key it sent. */
static uint32_t latency_color(uint32_t n)
{
    return ((n * 2654435761u) >> 8) | 0x010101u;
}

/* Cells walk the screen row by row, so old fills are eventually covered
 * (and released) instead of piling up. */
static struct qxl_rect latency_rect(uint32_t n)
{
    uint32_t cols = width / CELL, rows = height / CELL;
    uint32_t cell = (n - 1) % (cols * rows);
    return qxl_rect_xywh((int32_t)(cell % cols * CELL), (int32_t)(cell / cols * CELL), CELL,
                         CELL);
}

static void iteration(uint32_t n)
{
    struct qxl_rect r = latency_rect(n);
    uint32_t color = latency_color(n);
    struct qxl_drawable *d = qxl_drawable_new(&qxl, 0, QXL_DRAW_FILL, &r, QXL_EFFECT_OPAQUE);
    if (!d) {
        printf("latency: fill %u failed: no drawable\n", n);
        return;
    }
    d->u.fill.brush.type = QXL_BRUSH_SOLID;
    d->u.fill.brush.u.color = color;
    d->u.fill.rop_descriptor = QXL_ROPD_OP_PUT;
    uint32_t doorbells = qxl.stats.notify_cmd;
    serial_putc(MARKER);
    int rc = qxl_drawable_submit(&qxl, d);
    if (rc != QXL_OK) {
        snprintf(report, sizeof(report), "latency: fill %u failed: %s\n", n, qxl_strerror(rc));
        return;
    }
    snprintf(report, sizeof(report), "latency: fill %u color 0x%06x at %d,%d notify %u\n", n,
             color, r.left, r.top, qxl.stats.notify_cmd - doorbells);
}

int main(void)
{
    int rc = qxl_init(&qxl, 0);
    if (rc != QXL_OK) {
        printf("latency: no QXL display: %s\n", qxl_strerror(rc));
        return 1;
    }
    width = (uint32_t)mb_cmdline_int("width", 800) & ~3u;
    height = (uint32_t)mb_cmdline_int("height", 600);
    if (width < CELL || height < CELL ||
        qxl_create_primary(&qxl, width, height, QXL_SURF_FMT_32_xRGB, false) != QXL_OK) {
        printf("latency: cannot create a %ux%u primary\n", width, height);
        return 1;
    }
    struct qxl_rect all = qxl_rect_xywh(0, 0, (int32_t)width, (int32_t)height);
    qxl_fill(&qxl, 0, &all, BACKGROUND, QXL_ROPD_OP_PUT);
    if (!ps2_init()) {
        printf("latency: no PS/2 controller\n");
        return 1;
    }
    printf("latency: ready %ux%u\n", width, height);

    uint32_t n = 0;
    for (;;) {
        struct ps2_key k;
        while (ps2_key_get(&k)) {
            if (k.down) {
                iteration(++n);
            } else if (report[0]) {
                printf("%s", report);
                report[0] = 0;
            }
        }
        qxl_reclaim(&qxl);
        cli();
        if (!ps2_pending())
            cpu_idle();
        sti();
    }
}
