/* QXL display driver: device set-up, memory slots, rings, interrupts,
 * surfaces, I/O (sync and async), release processing, reset/recovery.
 *
 * One device (the first 1b36:0100 on bus 0), in the global `qxl`.
 * Typical use:
 *
 *     if (qxl_init(&qxl, 0) != QXL_OK) ...;
 *     qxl_create_primary(&qxl, 1024, 768, QXL_SURF_FMT_32_xRGB, false);
 *     qxl_fill(&qxl, 0, &r, 0x336699, QXL_ROPD_OP_PUT);
 *     qxl_update_area(&qxl, 0, &r, false);   // pixels now in qxl.primary.mem
 *
 * Waiting (ring full, out of memory, async I/O) is `sti; hlt` until the
 * device interrupts, bounded by a timeout counted in PIT ticks (the driver
 * starts the PIT at 100 Hz if nobody did).
 */
#ifndef QXL_H
#define QXL_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/pci.h"
#include "qxl/qxl_hw.h"
#include "qxl/qxl_mem.h"

enum qxl_status {
    QXL_OK = 0,
    QXL_ENODEV = -1,    /* no device / BARs missing */
    QXL_EBADROM = -2,   /* ROM magic or fields wrong */
    QXL_EBADRAM = -3,   /* RAM header magic wrong */
    QXL_EREV = -4,      /* revision too old */
    QXL_ETIMEOUT = -5,  /* the device did not answer in time */
    QXL_ENOMEM = -6,    /* device memory exhausted even after OOM */
    QXL_EINVAL = -7,    /* bad argument (driver-side check) */
    QXL_EGUESTBUG = -8, /* the device raised ERROR; reset needed */
};

#define QXL_MAX_SURFACES 64 /* off-screen surfaces the driver tracks */
#define QXL_TIMEOUT_MS 5000

struct qxl_surface {
    bool live;
    uint32_t id;
    uint32_t width, height, format;
    int32_t stride;
    uint8_t *mem;      /* first byte of the pixel buffer */
    void *mem_obj;     /* the VRAM object holding it (off-screen only) */
};

struct qxl_client_heads {
    uint32_t count;
    struct qxl_urect heads[QXL_MAX_CLIENT_HEADS];
};

struct qxl_stats {
    uint32_t irqs;                  /* handler runs with a bit pending */
    uint32_t irq_bits[6];           /* per interrupt bit */
    uint32_t cmds, cursor_cmds;     /* commands pushed */
    uint32_t notify_cmd, notify_cursor; /* doorbells rung */
    uint32_t ring_full_waits;       /* times a push found its ring full */
    uint32_t cursor_full_waits;
    uint32_t oom_notifies;          /* QXL_IO_NOTIFY_OOM written */
    uint32_t release_batches;       /* release ring entries consumed */
    uint32_t released;              /* objects released by the device */
    uint32_t bad_release_ids;       /* ids that were no live command */
    uint32_t async_ios;             /* async I/O completed */
    uint32_t resets;
    uint32_t dropped_by_reset;      /* objects forgotten by a reset */
};

struct qxl_device {
    const struct pci_dev *pci;
    uint16_t io;
    uint8_t irq, revision;
    uint8_t *bar0, *bar1;
    uint32_t bar0_size, bar1_size, rom_size;
    volatile struct qxl_rom *rom;
    volatile struct qxl_ram *ram;
    const struct qxl_mode *modes;
    uint32_t n_modes;

    uint8_t main_slot, surf_slot;   /* memory slot ids (ROM slots_start ..) */
    uint64_t main_high, surf_high;  /* slot id + generation, shifted */
    uint8_t *main_start, *main_end; /* what the main slot maps (BAR0 up to the RAM header) */
    uint8_t *surf_start, *surf_end; /* the surfaces slot (BAR1) */
    bool slots_ready;

    struct qxl_arena ram_arena, vram_arena;
    struct qxl_surface primary;
    struct qxl_surface surfaces[QXL_MAX_SURFACES];

    /* interrupt state: written by the handler */
    volatile uint32_t irq_pending_seen; /* OR of every bit seen */
    volatile uint32_t io_cmd_count;
    volatile uint32_t display_count, cursor_count, error_count;
    volatile uint32_t client_count, client_monitors_count;
    volatile bool guest_bug;           /* ERROR seen since the last reset */
    volatile bool irq_masked;          /* line masked at the PIC until RESET */
    uint32_t int_mask;                 /* what the driver keeps in int_mask */

    /* what the main flow has consumed of the counters above */
    uint32_t client_monitors_handled;
    void (*on_client_monitors)(struct qxl_device *q, const struct qxl_client_heads *h);

    uint64_t image_unique;
    uint32_t release_seq;
    uint32_t next_monitors_id;
    const struct qxl_rect *clip;       /* clip for the next draws (NULL: none) */
    uint32_t nclip;
    struct qxl_stats stats;
};

extern struct qxl_device qxl;

/* ---- bring-up (qxl_dev.c) ---- */

/* Find the device, map its BARs, check the ROM and RAM headers and the
 * revision (>= 4 needed: async I/O and monitors config).  No I/O written. */
int qxl_probe(struct qxl_device *q);
/* qxl_probe, then RESET, interrupt handler and mask, memory slots, arenas.
 * `irq_mask` 0 means every interrupt. */
int qxl_init(struct qxl_device *q, uint32_t irq_mask);
/* QXL_IO_RESET and re-initialise the driver: every outstanding object is
 * forgotten (counted in stats.dropped_by_reset), slots are added again, the
 * primary is recreated if there was one. */
int qxl_reset(struct qxl_device *q);
/* Name of a status code. */
const char *qxl_strerror(int status);

/* Mode table from the ROM. */
const struct qxl_mode *qxl_find_mode(const struct qxl_device *q, uint32_t w, uint32_t h,
                                     uint32_t bits);

/* ---- I/O and waiting ---- */

/* Write `val` to a port: no waiting.  Async ports: see qxl_io_async. */
void qxl_io(struct qxl_device *q, enum qxl_io_port port, uint8_t val);
/* Write an async port and wait for its IO_CMD interrupt (or an ERROR: a
 * rejected request never completes). */
int qxl_io_async(struct qxl_device *q, enum qxl_io_port port, uint8_t val);
/* Sleep (sti; hlt) until cond(ctx) or `ms` pass; false on timeout. */
bool qxl_wait(bool (*cond)(void *ctx), void *ctx, uint32_t ms);
/* Sleep until the interrupt counter *counter moves past `seen`. */
bool qxl_wait_counter(volatile uint32_t *counter, uint32_t seen, uint32_t ms);
/* Current int_mask; set a new one (and UPDATE_IRQ). */
void qxl_set_irq_mask(struct qxl_device *q, uint32_t mask);
/* Copy a line of text to the device log (QXL_IO_LOG). */
void qxl_log(struct qxl_device *q, const char *text);

/* ---- memory slots ---- */

int qxl_memslot_add(struct qxl_device *q, uint8_t slot, uint64_t start, uint64_t end,
                    bool async);
void qxl_memslot_del(struct qxl_device *q, uint8_t slot);
/* The QXL physical address of a pointer into the main or surfaces slot
 * (0 if it is in neither). */
qxl_phys_t qxl_phys(const struct qxl_device *q, const void *p);
/* And back; NULL if the address is not in one of the driver's slots. */
void *qxl_virt(const struct qxl_device *q, qxl_phys_t addr);

/* ---- allocation (qxl_ring.c) ---- */

/* An object in the BAR0 page area / VRAM; when there is no room the
 * release ring is drained, then NOTIFY_OOM is written and the driver sleeps
 * until the device returns resources (qxl_flush_releases). */
void *qxl_alloc(struct qxl_device *q, size_t size, enum qxl_obj_kind kind);
void *qxl_alloc_vram(struct qxl_device *q, size_t size, enum qxl_obj_kind kind);
/* Consume the release ring; returns the number of objects released. */
uint32_t qxl_reclaim(struct qxl_device *q);
/* Get the device to give back what it holds (NOTIFY_OOM, waiting for the
 * release ring push) and reclaim; returns the objects released. */
uint32_t qxl_flush_releases(struct qxl_device *q);
/* Live objects in both arenas. */
uint32_t qxl_live_objects(const struct qxl_device *q);

/* ---- command submission (qxl_ring.c) ---- */

/* Put a command on the display ring; waits (DISPLAY interrupt) while the
 * ring is full; rings the doorbell if the device asked for it. */
int qxl_push_command(struct qxl_device *q, enum qxl_cmd_type type, void *cmd_obj);
/* The same with the address given by the caller (another slot's view of
 * the object, or a deliberately wrong one in tests); 0 = qxl_phys(obj). */
int qxl_push_command_at(struct qxl_device *q, enum qxl_cmd_type type, void *cmd_obj,
                        qxl_phys_t addr);
/* The same on the cursor ring. */
int qxl_push_cursor_command(struct qxl_device *q, void *cmd_obj);
/* Release ids: the command's address in the low half, a sequence number
 * (kept in the object's header) in the high half, so an id the device
 * returns twice, or late, never frees a newer object at the same place. */
uint64_t qxl_release_id(struct qxl_device *q, void *obj);

/* ---- surfaces (qxl_surface.c) ---- */

int qxl_create_primary(struct qxl_device *q, uint32_t width, uint32_t height,
                       uint32_t format, bool async);
int qxl_destroy_primary(struct qxl_device *q, bool async);
/* An off-screen surface in VRAM: returns its id (> 0) or a negative status. */
int qxl_surface_create(struct qxl_device *q, uint32_t width, uint32_t height, uint32_t format);
int qxl_surface_destroy(struct qxl_device *q, uint32_t id);
/* The driver's record of a surface (0 = primary); NULL if not live. */
struct qxl_surface *qxl_surface_get(struct qxl_device *q, uint32_t id);
/* Render pending drawables of `area` into the surface's memory. */
int qxl_update_area(struct qxl_device *q, uint32_t surface_id, const struct qxl_rect *area,
                    bool async);
/* Bytes per pixel of a surface format. */
uint32_t qxl_format_bpp(uint32_t format);

/* ---- monitors (qxl_surface.c) ---- */

/* Tell the device the guest's monitor layout (one head per entry). */
int qxl_monitors_config(struct qxl_device *q, const struct qxl_head *heads, uint16_t count);
/* Read the client monitors config from the ROM; false if the CRC is wrong. */
bool qxl_client_monitors(const struct qxl_device *q, struct qxl_client_heads *out);
/* Call on_client_monitors for each new CLIENT_MONITORS_CONFIG interrupt
 * (from the main flow, never the handler). */
void qxl_poll_events(struct qxl_device *q);
/* CRC-32 of the ROM's client monitors block as the device computes it
 * (Linux crc32_le with seed 0: reflected 0xedb88320, no inversions). */
uint32_t qxl_crc32(const void *data, uint32_t len);

static inline struct qxl_rect qxl_rect_xywh(int32_t x, int32_t y, int32_t w, int32_t h)
{
    return (struct qxl_rect){.top = y, .left = x, .bottom = y + h, .right = x + w};
}

#endif
