/* Suites rom, modes, memslot, primary, reset: the device's identity, its
 * headers, the mode table, memory slots, primary surfaces and RESET. */
#include "lib/alloc.h"
#include "lib/string.h"
#include "suite.h"

/* ------------------------------------------------------------------ rom */

static void run_rom(void)
{
    int rc = qxl.ram ? QXL_OK : qxl_init(&qxl, 0);
    if (rc != QXL_OK) {
        diag("qxl_init: %s", qxl_strerror(rc));
        return;
    }
    const struct pci_dev *d = qxl.pci;
    t_ok(d->vendor == QXL_VENDOR_ID && d->device == QXL_DEVICE_ID &&
             (d->class_code >> 8) == 0x0300 && d->revision >= 4 &&
             d->bar[0].type == PCI_BAR_MEM && d->bar[1].type == PCI_BAR_MEM &&
             d->bar[2].type == PCI_BAR_MEM && d->bar[3].type == PCI_BAR_IO,
         "rom: PCI %04x:%04x class %06x rev %u, BAR0-2 memory, BAR3 I/O", d->vendor, d->device,
         d->class_code, d->revision);
    volatile struct qxl_rom *rom = qxl.rom;
    t_ok(rom->magic == QXL_ROM_MAGIC && rom->modes_offset == sizeof(struct qxl_rom),
         "rom: magic QXRO, mode table right after the 1160-byte header (at %u)",
         rom->modes_offset);
    bool geometry = rom->draw_area_offset == 0 && rom->surface0_area_size &&
                    !(rom->surface0_area_size & 4095) &&
                    rom->pages_offset == rom->surface0_area_size &&
                    rom->pages_offset + (uint64_t)rom->num_pages * 4096 <= rom->ram_header_offset &&
                    !(rom->ram_header_offset & 4095) &&
                    rom->ram_header_offset + sizeof(struct qxl_ram) <= qxl.bar0_size;
    t_ok(geometry,
         "rom: BAR0 layout: surface0 %u bytes at %u, %u pages at %u, RAM header at %u of %u",
         rom->surface0_area_size, rom->draw_area_offset, rom->num_pages, rom->pages_offset,
         rom->ram_header_offset, qxl.bar0_size);
    t_ok(rom->slots_start == 1 && rom->slots_end == 7 && rom->slot_gen_bits == 8 &&
             rom->slot_id_bits == 8 && rom->n_surfaces >= 2,
         "rom: slots %u..%u, %u id bits, %u generation bits, %u surfaces", rom->slots_start,
         rom->slots_end, rom->slot_id_bits, rom->slot_gen_bits, rom->n_surfaces);
    volatile struct qxl_ram *ram = qxl.ram;
    t_ok(ram->magic == QXL_RAM_MAGIC && ram->cmd_ring.h.num_items == QXL_CMD_RING_SLOTS &&
             ram->cursor_ring.h.num_items == QXL_CURSOR_RING_SLOTS &&
             ram->release_ring.h.num_items == QXL_RELEASE_RING_SLOTS &&
             ram->cmd_ring.h.prod - ram->cmd_ring.h.cons <= QXL_CMD_RING_SLOTS,
         "rom: RAM header magic QXRA, rings of %u/%u/%u slots", ram->cmd_ring.h.num_items,
         ram->cursor_ring.h.num_items, ram->release_ring.h.num_items);
    struct qxl_client_heads heads;
    t_ok(qxl_client_monitors(&qxl, &heads),
         "rom: client monitors config CRC valid (%u heads, crc %08x)", heads.count,
         rom->client_monitors_config_crc);
}

const struct suite suite_rom = {"rom", 6, run_rom, "PCI identity, ROM and RAM headers"};

/* ---------------------------------------------------------------- modes */

static void run_modes(void)
{
    if (!t_ready())
        return;
    bool sane = qxl.n_modes > 0;
    uint32_t bad = 0;
    for (uint32_t i = 0; i < qxl.n_modes; i++) {
        const struct qxl_mode *m = &qxl.modes[i];
        bool good = (m->bits == 16 || m->bits == 32) && m->stride == m->x_res * m->bits / 8 &&
                    (uint64_t)m->y_res * m->stride <= qxl.rom->surface0_area_size &&
                    m->orientation <= 1 && m->x_mili && m->y_mili;
        for (uint32_t j = 0; j < i; j++)
            good = good && qxl.modes[j].id != m->id;
        if (!good && bad++ < 3)
            diag("mode %u: id %u %ux%ux%u stride %u orientation %u", i, m->id, m->x_res,
                 m->y_res, m->bits, m->stride, m->orientation);
    }
    t_ok(sane && !bad, "modes: %u modes, each 16/32 bpp, stride = width * bytes, fits surface0",
         qxl.n_modes);
    t_ok(qxl_find_mode(&qxl, 640, 480, 32) && qxl_find_mode(&qxl, 800, 600, 32) &&
             qxl_find_mode(&qxl, 1024, 768, 32) && qxl_find_mode(&qxl, 1024, 768, 16),
         "modes: 640x480, 800x600, 1024x768 at 32 bpp and 1024x768 at 16 bpp listed");
    uint32_t unpaired = 0;
    for (uint32_t i = 0; i < qxl.n_modes; i++) {
        const struct qxl_mode *m = &qxl.modes[i];
        bool twin = false;
        for (uint32_t j = 0; j < qxl.n_modes; j++) {
            const struct qxl_mode *o = &qxl.modes[j];
            twin |= o->x_res == m->x_res && o->y_res == m->y_res && o->bits == m->bits &&
                    o->orientation != m->orientation;
        }
        unpaired += !twin;
    }
    t_ok(!unpaired, "modes: every mode listed in both orientations (%u unpaired)", unpaired);
}

const struct suite suite_modes = {"modes", 3, run_modes, "the ROM mode table"};

/* -------------------------------------------------------------- memslot */

#define EXTRA_SLOT 3
#define ASYNC_SLOT 4

/* a fill drawable reached through slot `slot` mapped at `base` */
static bool draw_through_slot(uint8_t slot, uint8_t *base, uint32_t color)
{
    struct qxl_rect r = qxl_rect_xywh(8, 8, 16, 16);
    struct qxl_drawable *d = qxl_drawable_new(&qxl, 0, QXL_DRAW_FILL, &r, QXL_EFFECT_OPAQUE);
    if (!d)
        return false;
    d->u.fill.brush.type = QXL_BRUSH_SOLID;
    d->u.fill.brush.u.color = color;
    d->u.fill.rop_descriptor = QXL_ROPD_OP_PUT;
    qxl_phys_t addr = ((uint64_t)slot << 56) | (uint64_t)((uint8_t *)d - base);
    if (qxl_push_command_at(&qxl, QXL_CMD_DRAW, d, addr) != QXL_OK)
        return false;
    uint32_t px[16 * 16], want[16 * 16];
    for (int i = 0; i < 256; i++)
        want[i] = color;
    return t_read(0, &r, px) && !memcmp(px, want, sizeof(px));
}

/* a guest bug must raise ERROR; the device is then reset for the next test */
static bool expect_bug(const char *what)
{
    bool err = t_wait_error(1000);
    if (!err)
        diag("%s: no ERROR interrupt", what);
    qxl_reset(&qxl);
    return err && !qxl.guest_bug;
}

static void run_memslot(void)
{
    if (!t_ready())
        return;
    /* slot 3 maps the device pages only: its offsets differ from the main
     * slot's by pages_offset */
    uint8_t *pages = qxl.bar0 + qxl.rom->pages_offset;
    uint8_t *pages_end = pages + (size_t)qxl.rom->num_pages * 4096;
    int rc = qxl_memslot_add(&qxl, EXTRA_SLOT, (uintptr_t)pages, (uintptr_t)pages_end, false);
    t_ok(rc == QXL_OK && draw_through_slot(EXTRA_SLOT, pages, 0x12ab34),
         "memslot: add slot %u over the page area; a drawable addressed slot-relative in it "
         "draws", EXTRA_SLOT);
    uint32_t io = qxl.io_cmd_count;
    rc = qxl_memslot_add(&qxl, ASYNC_SLOT, (uintptr_t)qxl.bar1, (uintptr_t)qxl.bar1 + 65536,
                         true);
    t_ok(rc == QXL_OK && qxl.io_cmd_count == io + 1 && !qxl.guest_bug,
         "memslot: MEMSLOT_ADD_ASYNC completes with one IO_CMD interrupt");
    qxl_memslot_del(&qxl, EXTRA_SLOT);
    qxl_memslot_del(&qxl, ASYNC_SLOT);
    rc = qxl_memslot_add(&qxl, EXTRA_SLOT, (uintptr_t)pages, (uintptr_t)pages_end, false);
    t_ok(rc == QXL_OK && !qxl.guest_bug && draw_through_slot(EXTRA_SLOT, pages, 0x5599cc),
         "memslot: MEMSLOT_DEL frees the slot: adding it again works");
    qxl_memslot_del(&qxl, EXTRA_SLOT);

    qxl_memslot_add(&qxl, 8, (uintptr_t)pages, (uintptr_t)pages_end, false);
    t_ok(expect_bug("slot 8"), "memslot: adding slot 8 (of 8) is a guest bug (ERROR)");
    qxl_memslot_add(&qxl, qxl.main_slot, (uintptr_t)qxl.main_start, (uintptr_t)qxl.main_end,
                    false);
    t_ok(expect_bug("active slot"), "memslot: adding an active slot again is a guest bug");
    qxl_memslot_add(&qxl, EXTRA_SLOT, 0x100000, 0x200000, false);
    t_ok(expect_bug("guest RAM"), "memslot: a range outside the device BARs is a guest bug");
    qxl_memslot_add(&qxl, EXTRA_SLOT, (uintptr_t)pages_end, (uintptr_t)pages, false);
    t_ok(expect_bug("start > end"), "memslot: start above end is a guest bug");
}

const struct suite suite_memslot = {"memslot", 7, run_memslot,
                                    "memory slots, slot-relative addresses, error cases"};

/* -------------------------------------------------------------- primary */

static bool primary_roundtrip(uint32_t w, uint32_t h, uint32_t fmt, bool async)
{
    int rc = qxl_create_primary(&qxl, w, h, fmt, async);
    if (rc != QXL_OK) {
        diag("create %ux%u fmt %u: %s", w, h, fmt, qxl_strerror(rc));
        return false;
    }
    /* a fill in each corner, read back in the surface's own format */
    static const uint32_t colors[4] = {0xff0000, 0x00ff00, 0x0000ff, 0xffffff};
    /* brush colours are in the destination surface's pixel format */
    uint32_t native[4];
    for (int i = 0; i < 4; i++) {
        uint32_t c = colors[i], r = (c >> 16) & 0xff, g = (c >> 8) & 0xff, b = c & 0xff;
        if (fmt == QXL_SURF_FMT_16_555)
            native[i] = ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3);
        else if (fmt == QXL_SURF_FMT_16_565)
            native[i] = ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3);
        else
            native[i] = c;
    }
    struct qxl_rect corners[4] = {qxl_rect_xywh(0, 0, 4, 4), qxl_rect_xywh(w - 4, 0, 4, 4),
                                  qxl_rect_xywh(0, h - 4, 4, 4),
                                  qxl_rect_xywh(w - 4, h - 4, 4, 4)};
    for (int i = 0; i < 4; i++)
        qxl_fill(&qxl, 0, &corners[i], native[i], QXL_ROPD_OP_PUT);
    struct qxl_rect all = qxl_rect_xywh(0, 0, w, h);
    if (qxl_update_area(&qxl, 0, &all, async) != QXL_OK)
        return false;
    bool good = true;
    for (int i = 0; i < 4; i++) {
        const uint8_t *row = qxl.primary.mem + (corners[i].top + 1) * qxl.primary.stride;
        uint32_t want = native[i], got;
        if (qxl_format_bpp(fmt) == 2) {
            got = ((const uint16_t *)row)[corners[i].left + 1];
        } else {
            got = ((const uint32_t *)row)[corners[i].left + 1] & 0xffffff;
        }
        if (got != want) {
            diag("%ux%u fmt %u corner %d: %x, expected %x", w, h, fmt, i, got, want);
            good = false;
        }
    }
    return good && !qxl.guest_bug;
}

static void run_primary(void)
{
    if (!t_ready())
        return;
    t_ok(primary_roundtrip(640, 480, QXL_SURF_FMT_32_xRGB, false),
         "primary: 640x480 xRGB (CREATE_PRIMARY), fills in the corners read back");
    t_ok(primary_roundtrip(800, 600, QXL_SURF_FMT_32_xRGB, false),
         "primary: 800x600 xRGB after DESTROY_PRIMARY");
    t_ok(primary_roundtrip(1024, 768, QXL_SURF_FMT_32_xRGB, true),
         "primary: 1024x768 xRGB with the async ports (create, destroy, update)");
    t_ok(primary_roundtrip(1024, 768, QXL_SURF_FMT_16_565, false),
         "primary: 1024x768 16-bit 565");
    /* the biggest 32-bit mode of the ROM list that is not wider than 1920 */
    const struct qxl_mode *best = 0;
    for (uint32_t i = 0; i < qxl.n_modes; i++) {
        const struct qxl_mode *m = &qxl.modes[i];
        if (m->bits == 32 && m->orientation == 0 && m->x_res <= 1920 &&
            (!best || m->x_res * m->y_res > best->x_res * best->y_res))
            best = m;
    }
    t_ok(best && primary_roundtrip(best->x_res, best->y_res, QXL_SURF_FMT_32_xRGB, false),
         "primary: largest listed mode up to 1920 wide (%ux%u)", best ? best->x_res : 0,
         best ? best->y_res : 0);
    int rc = qxl_destroy_primary(&qxl, true);
    t_ok(rc == QXL_OK && primary_roundtrip(640, 480, QXL_SURF_FMT_32_xRGB, false),
         "primary: DESTROY_PRIMARY_ASYNC, then 640x480 again");
}

const struct suite suite_primary = {"primary", 6, run_primary,
                                    "primary surface create/destroy in several modes"};

/* ---------------------------------------------------------------- reset */

static void run_reset(void)
{
    if (!t_ready())
        return;
    struct qxl_rom before;
    memcpy(&before, (const void *)qxl.rom, sizeof(before));
    qxl_set_irq_mask(&qxl, QXL_INT_IO_CMD | QXL_INT_ERROR);
    struct qxl_rect r = qxl_rect_xywh(0, 0, 32, 32);
    qxl_fill(&qxl, 0, &r, 0x808080, QXL_ROPD_OP_PUT);
    t_wait_idle(1000);
    qxl_io(&qxl, QXL_IO_RESET, 0);
    volatile struct qxl_ram *ram = qxl.ram;
    struct qxl_rom after;
    memcpy(&after, (const void *)qxl.rom, sizeof(after));
    /* the mode and update id may legitimately differ; the rest is the ROM */
    before.mode = after.mode;
    before.update_id = after.update_id;
    before.mm_clock = after.mm_clock;
    /* CLIENT may be raised again at once: the device re-reports the client */
    bool defaults = ram->magic == QXL_RAM_MAGIC && ram->int_mask == 0 &&
                    (ram->int_pending & ~QXL_INT_CLIENT) == 0 && ram->cmd_ring.h.prod == 0 &&
                    ram->cmd_ring.h.cons == 0 && ram->cursor_ring.h.prod == 0 &&
                    ram->cursor_ring.h.cons == 0 && ram->release_ring.h.prod == 0 &&
                    ram->release_ring.h.cons == 0 && ram->release_ring.items[0] == 0 &&
                    !memcmp(&before, &after, sizeof(before));
    if (!defaults)
        diag("after RESET: mask %x pending %x cmd %u/%u cursor %u/%u release %u/%u", ram->int_mask,
             ram->int_pending, ram->cmd_ring.h.prod, ram->cmd_ring.h.cons,
             ram->cursor_ring.h.prod, ram->cursor_ring.h.cons, ram->release_ring.h.prod,
             ram->release_ring.h.cons);
    t_ok(defaults, "reset: RESET clears int_mask and int_pending, empties the rings, "
                   "restores the ROM");
    qxl.int_mask = QXL_INT_ALL;
    int rc = qxl_reset(&qxl);
    uint32_t want[32 * 32], got[32 * 32];
    for (int i = 0; i < 32 * 32; i++)
        want[i] = 0x4466aa;
    qxl_fill(&qxl, 0, &r, 0x4466aa, QXL_ROPD_OP_PUT);
    t_ok(rc == QXL_OK && t_read(0, &r, got) && !memcmp(got, want, sizeof(got)),
         "reset: the driver re-adds its slots and primary and draws again");
}

const struct suite suite_reset = {"reset", 2, run_reset, "RESET restores the defaults"};
