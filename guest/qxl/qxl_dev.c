/* QXL bring-up: PCI probe, ROM/RAM checks, memory slots, interrupts, I/O,
 * reset.  See qxl.h. */
#include "qxl/qxl.h"

#include "lib/console.h"
#include "lib/cpu.h"
#include "lib/io.h"
#include "lib/irq.h"
#include "lib/pic.h"
#include "lib/pit.h"
#include "lib/string.h"

struct qxl_device qxl;

#define MIN_REVISION 4 /* async I/O (3) and monitors config (4) */
#define WAIT_TICK_HZ 100

const char *qxl_strerror(int status)
{
    switch (status) {
    case QXL_OK: return "ok";
    case QXL_ENODEV: return "no QXL device";
    case QXL_EBADROM: return "bad ROM";
    case QXL_EBADRAM: return "bad RAM header";
    case QXL_EREV: return "revision too old";
    case QXL_ETIMEOUT: return "timeout";
    case QXL_ENOMEM: return "out of device memory";
    case QXL_EINVAL: return "invalid argument";
    case QXL_EGUESTBUG: return "device reported a guest bug";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- waiting */

bool qxl_wait(bool (*cond)(void *ctx), void *ctx, uint32_t ms)
{
    if (!pit_hz())
        pit_init(WAIT_TICK_HZ);
    uint64_t deadline = pit_uptime_ms() + ms;
    uint32_t flags = irq_save();
    bool met;
    /* test with interrupts off, then sti;hlt: a wake-up between the test
     * and the hlt is taken after the hlt, never lost */
    while (!(met = cond(ctx)) && pit_uptime_ms() < deadline) {
        cpu_idle();
        cli();
    }
    irq_restore(flags);
    return met;
}

struct counter_wait {
    volatile uint32_t *counter;
    uint32_t seen;
};

static bool counter_moved(void *ctx)
{
    struct counter_wait *w = ctx;
    return *w->counter != w->seen;
}

bool qxl_wait_counter(volatile uint32_t *counter, uint32_t seen, uint32_t ms)
{
    struct counter_wait w = {counter, seen};
    return qxl_wait(counter_moved, &w, ms);
}

/* ------------------------------------------------------------- interrupts */

static void qxl_irq_handler(unsigned irq, void *ctx)
{
    struct qxl_device *q = ctx;
    uint32_t pending = __atomic_exchange_n(&q->ram->int_pending, 0, __ATOMIC_SEQ_CST);
    if (pending & QXL_INT_ERROR) {
        q->error_count++;
        q->guest_bug = true;
    }
    if (q->guest_bug) {
        /* in the guest-bug state the device ignores UPDATE_IRQ until RESET,
         * so its line stays up: mask it at the PIC until qxl_reset */
        pic_mask(q->irq);
        q->irq_masked = true;
    }
    if (!pending)
        return; /* the line is shared */
    q->stats.irqs++;
    for (int b = 0; b < 6; b++)
        if (pending & (1u << b))
            q->stats.irq_bits[b]++;
    q->irq_pending_seen |= pending;
    if (pending & QXL_INT_DISPLAY)
        q->display_count++;
    if (pending & QXL_INT_CURSOR)
        q->cursor_count++;
    if (pending & QXL_INT_IO_CMD)
        q->io_cmd_count++;
    if (pending & QXL_INT_CLIENT)
        q->client_count++;
    if (pending & QXL_INT_CLIENT_MONITORS)
        q->client_monitors_count++;
    /* the level only drops when the device recomputes it */
    outb(q->io + QXL_IO_UPDATE_IRQ, 0);
}

void qxl_set_irq_mask(struct qxl_device *q, uint32_t mask)
{
    q->int_mask = mask;
    q->ram->int_mask = mask;
    outb(q->io + QXL_IO_UPDATE_IRQ, 0);
}

/* -------------------------------------------------------------------- I/O */

void qxl_io(struct qxl_device *q, enum qxl_io_port port, uint8_t val)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    outb(q->io + port, val);
}

struct async_wait {
    struct qxl_device *q;
    uint32_t io_seen, errors_seen;
};

static bool async_done(void *ctx)
{
    struct async_wait *w = ctx;
    return w->q->io_cmd_count != w->io_seen || w->q->error_count != w->errors_seen;
}

int qxl_io_async(struct qxl_device *q, enum qxl_io_port port, uint8_t val)
{
    /* an async request the device finds to be a guest bug never completes
     * (QEMU leaves it pending until RESET): stop waiting at the ERROR */
    struct async_wait w = {q, q->io_cmd_count, q->error_count};
    qxl_io(q, port, val);
    if (!qxl_wait(async_done, &w, QXL_TIMEOUT_MS)) {
        printf("qxl: async port %u (%u) never completed\n", port, val);
        return QXL_ETIMEOUT;
    }
    if (q->io_cmd_count != w.io_seen)
        q->stats.async_ios++;
    return q->guest_bug ? QXL_EGUESTBUG : QXL_OK;
}

void qxl_log(struct qxl_device *q, const char *text)
{
    strlcpy((char *)q->ram->log_buf, text, QXL_LOG_BUF_SIZE);
    qxl_io(q, QXL_IO_LOG, 0);
}

/* ----------------------------------------------------------------- probing */

int qxl_probe(struct qxl_device *q)
{
    const struct pci_dev *d = pci_find(QXL_VENDOR_ID, QXL_DEVICE_ID, 0);
    if (!d && pci_count() == 0) {
        pci_scan();
        d = pci_find(QXL_VENDOR_ID, QXL_DEVICE_ID, 0);
    }
    if (!d)
        return QXL_ENODEV;
    const struct pci_bar *b0 = &d->bar[QXL_BAR_RAM], *b1 = &d->bar[QXL_BAR_VRAM];
    const struct pci_bar *b2 = &d->bar[QXL_BAR_ROM], *b3 = &d->bar[QXL_BAR_IO];
    if (b0->type != PCI_BAR_MEM || b1->type != PCI_BAR_MEM || b2->type != PCI_BAR_MEM ||
        b3->type != PCI_BAR_IO || !b0->addr || !b1->addr || !b2->addr || !b3->addr ||
        b0->addr >> 32 || b1->addr >> 32 || b2->addr >> 32)
        return QXL_ENODEV;
    pci_enable(d, PCI_CMD_IO | PCI_CMD_MEMORY | PCI_CMD_MASTER);

    q->pci = d;
    q->revision = d->revision;
    q->irq = d->irq_line;
    q->io = (uint16_t)b3->addr;
    q->bar0 = (uint8_t *)(uintptr_t)b0->addr;
    q->bar1 = (uint8_t *)(uintptr_t)b1->addr;
    q->bar0_size = (uint32_t)b0->size;
    q->bar1_size = (uint32_t)b1->size;
    q->rom_size = (uint32_t)b2->size;
    q->rom = (volatile struct qxl_rom *)(uintptr_t)b2->addr;

    volatile struct qxl_rom *rom = q->rom;
    if (rom->magic != QXL_ROM_MAGIC)
        return QXL_EBADROM;
    if (rom->ram_header_offset + sizeof(struct qxl_ram) > q->bar0_size ||
        rom->draw_area_offset + rom->surface0_area_size > q->bar0_size ||
        rom->pages_offset + (uint64_t)rom->num_pages * 4096 > rom->ram_header_offset ||
        rom->modes_offset + 4 > q->rom_size || rom->n_surfaces == 0 ||
        rom->slots_end <= rom->slots_start || rom->slot_id_bits == 0)
        return QXL_EBADROM;
    q->modes = (const struct qxl_mode *)((uintptr_t)rom + rom->modes_offset + 4);
    q->n_modes = *(const volatile uint32_t *)((uintptr_t)rom + rom->modes_offset);
    if (rom->modes_offset + 4 + q->n_modes * sizeof(struct qxl_mode) > q->rom_size)
        return QXL_EBADROM;
    q->ram = (volatile struct qxl_ram *)(q->bar0 + rom->ram_header_offset);
    if (q->ram->magic != QXL_RAM_MAGIC)
        return QXL_EBADRAM;
    if (q->revision < MIN_REVISION)
        return QXL_EREV;
    return QXL_OK;
}

const struct qxl_mode *qxl_find_mode(const struct qxl_device *q, uint32_t w, uint32_t h,
                                     uint32_t bits)
{
    for (uint32_t i = 0; i < q->n_modes; i++) {
        const struct qxl_mode *m = &q->modes[i];
        if (m->x_res == w && m->y_res == h && m->bits == bits && m->orientation == 0)
            return m;
    }
    return 0;
}

/* ------------------------------------------------------------ memory slots */

int qxl_memslot_add(struct qxl_device *q, uint8_t slot, uint64_t start, uint64_t end,
                    bool async)
{
    q->ram->mem_slot.mem_start = start;
    q->ram->mem_slot.mem_end = end;
    if (async)
        return qxl_io_async(q, QXL_IO_MEMSLOT_ADD_ASYNC, slot);
    qxl_io(q, QXL_IO_MEMSLOT_ADD, slot);
    return q->guest_bug ? QXL_EGUESTBUG : QXL_OK;
}

void qxl_memslot_del(struct qxl_device *q, uint8_t slot)
{
    qxl_io(q, QXL_IO_MEMSLOT_DEL, slot);
}

static uint64_t slot_high_bits(const struct qxl_device *q, uint8_t slot)
{
    unsigned id_shift = 64 - q->rom->slot_id_bits;
    unsigned gen_shift = id_shift - q->rom->slot_gen_bits;
    return ((uint64_t)slot << id_shift) | ((uint64_t)q->rom->slot_generation << gen_shift);
}

qxl_phys_t qxl_phys(const struct qxl_device *q, const void *p)
{
    const uint8_t *b = p;
    if (b >= q->main_start && b < q->main_end)
        return q->main_high | (uint64_t)(b - q->main_start);
    if (b >= q->surf_start && b < q->surf_end)
        return q->surf_high | (uint64_t)(b - q->surf_start);
    return 0;
}

void *qxl_virt(const struct qxl_device *q, qxl_phys_t addr)
{
    uint64_t off = addr & 0xffffffffffffull;
    uint64_t high = addr & ~0xffffffffffffull;
    if (high == q->main_high && off < (uint64_t)(q->main_end - q->main_start))
        return q->main_start + off;
    if (high == q->surf_high && off < (uint64_t)(q->surf_end - q->surf_start))
        return q->surf_start + off;
    return 0;
}

static int setup_slots(struct qxl_device *q)
{
    q->main_slot = q->rom->slots_start;
    q->surf_slot = q->rom->slots_start + 1;
    q->main_start = q->bar0;
    q->main_end = q->bar0 + q->rom->ram_header_offset;
    q->surf_start = q->bar1;
    q->surf_end = q->bar1 + q->bar1_size;
    int rc = qxl_memslot_add(q, q->main_slot, (uintptr_t)q->main_start,
                             (uintptr_t)q->main_end, false);
    if (rc == QXL_OK)
        rc = qxl_memslot_add(q, q->surf_slot, (uintptr_t)q->surf_start,
                             (uintptr_t)q->surf_end, false);
    /* the generation is only meaningful once the slot exists */
    q->main_high = slot_high_bits(q, q->main_slot);
    q->surf_high = slot_high_bits(q, q->surf_slot);
    q->slots_ready = rc == QXL_OK;
    return rc;
}

/* ---------------------------------------------------------- reset and init */

static void forget_objects(struct qxl_device *q)
{
    q->stats.dropped_by_reset += q->ram_arena.live_objects + q->vram_arena.live_objects;
    qxl_arena_init(&q->ram_arena, "ram", (uintptr_t)(q->bar0 + q->rom->pages_offset),
                   (size_t)q->rom->num_pages * 4096);
    qxl_arena_init(&q->vram_arena, "vram", (uintptr_t)q->bar1, q->bar1_size);
    memset(q->surfaces, 0, sizeof(q->surfaces));
}

static int reset_device(struct qxl_device *q)
{
    qxl_io(q, QXL_IO_RESET, 0);
    q->guest_bug = false;
    q->stats.resets++;
    if (q->irq_masked) {
        q->irq_masked = false;
        pic_unmask(q->irq);
    }
    if (q->ram->magic != QXL_RAM_MAGIC || q->rom->magic != QXL_ROM_MAGIC)
        return QXL_EBADRAM;
    forget_objects(q);
    /* the reset cleared int_mask */
    qxl_set_irq_mask(q, q->int_mask);
    return setup_slots(q);
}

int qxl_init(struct qxl_device *q, uint32_t irq_mask)
{
    memset(q, 0, sizeof(*q));
    int rc = qxl_probe(q);
    if (rc != QXL_OK)
        return rc;
    if (!pit_hz())
        pit_init(WAIT_TICK_HZ);
    q->int_mask = irq_mask ? irq_mask : QXL_INT_ALL;
    q->image_unique = 1;
    q->ram_arena.limit = 0;
    if (q->irq == PCI_IRQ_NONE || irq_register(q->irq, qxl_irq_handler, q) != 0) {
        printf("qxl: no usable interrupt line (%u)\n", q->irq);
        return QXL_ENODEV;
    }
    return reset_device(q);
}

int qxl_reset(struct qxl_device *q)
{
    struct qxl_surface prim = q->primary;
    q->primary.live = false;
    int rc = reset_device(q);
    if (rc == QXL_OK && prim.live)
        rc = qxl_create_primary(q, prim.width, prim.height, prim.format, false);
    return rc;
}
