#include "pciinit.h"
#include "bios.h"
#include "lib/io.h"
#include "lib/pci.h"

#define PIIX3_PIRQ_ROUTE 0x60
#define ELCR1 0x4d0
#define ELCR2 0x4d1
#define BAR_ROM 6
#define MAX_REQS 64 /* per kind; a board with more BARs is refused */

/* PIRQA..D -> ISA IRQ, as SeaBIOS programs the PIIX3. */
static const uint8_t pirq_irq[4] = {10, 10, 11, 11};

struct bar_req {
    const struct pci_dev *dev;
    uint8_t index; /* 0..5, BAR_ROM */
    bool is64;
    uint64_t size;
    uint64_t addr;
};

static struct bar_req io_reqs[MAX_REQS], mem_reqs[MAX_REQS];
static int n_io, n_mem;

/* Stable sort, largest first: equal sizes keep bus order, as SeaBIOS. */
static void sort_by_size(struct bar_req *r, int n)
{
    for (int i = 1; i < n; i++) {
        struct bar_req x = r[i];
        int j = i;
        while (j > 0 && r[j - 1].size < x.size) {
            r[j] = r[j - 1];
            j--;
        }
        r[j] = x;
    }
}

static void collect(void)
{
    n_io = n_mem = 0;
    for (int i = 0; i < pci_count(); i++) {
        const struct pci_dev *d = pci_get(i);
        if ((d->header_type & 0x7f) != 0) {
            info("bridge 00:%02x.%x (header type 0x%02x) left alone", PCI_SLOT(d->bdf),
                 PCI_FUNC(d->bdf), d->header_type);
            continue;
        }
        for (int b = 0; b <= BAR_ROM; b++) {
            const struct pci_bar *bar = b == BAR_ROM ? &d->rom : &d->bar[b];
            if (bar->type == PCI_BAR_NONE)
                continue;
            struct bar_req r = {d, (uint8_t)b, bar->is64, bar->size, 0};
            if (n_io == MAX_REQS || n_mem == MAX_REQS)
                fatal("more than %d PCI BARs of one kind", MAX_REQS);
            if (bar->type == PCI_BAR_IO) {
                if (r.size < 4)
                    r.size = 4;
                io_reqs[n_io++] = r;
            } else {
                if (r.size < 0x1000)
                    r.size = 0x1000; /* keep every BAR on its own page */
                mem_reqs[n_mem++] = r;
            }
        }
    }
    sort_by_size(io_reqs, n_io);
    sort_by_size(mem_reqs, n_mem);
}

static void place_io(void)
{
    uint32_t next = PCI_IO_WINDOW_START;
    for (int i = 0; i < n_io; i++) {
        uint32_t a = align_up32(next, (uint32_t)io_reqs[i].size);
        if (a + io_reqs[i].size > PCI_IO_WINDOW_END)
            fatal("PCI I/O window 0x%x-0x%x too small for %02x.%x bar%u (size 0x%llx)",
                  PCI_IO_WINDOW_START, PCI_IO_WINDOW_END - 1, PCI_SLOT(io_reqs[i].dev->bdf),
                  PCI_FUNC(io_reqs[i].dev->bdf), io_reqs[i].index, io_reqs[i].size);
        io_reqs[i].addr = a;
        next = a + (uint32_t)io_reqs[i].size;
    }
}

/* Place the memory requests (the 64-bit ones only if include64) top-down
 * below `end`, largest first from a base aligned to the largest one, as
 * SeaBIOS does.  Returns false when they do not fit above `start`. */
static bool place_mem_32(uint32_t start, uint32_t end, bool include64)
{
    uint64_t total = 0, largest = 0;
    for (int i = 0; i < n_mem; i++) {
        if (mem_reqs[i].is64 && !include64)
            continue;
        total += mem_reqs[i].size;
        if (mem_reqs[i].size > largest)
            largest = mem_reqs[i].size;
    }
    if (!total)
        return true;
    if (total > end - start || largest > end)
        return false;
    uint64_t base = (end - total) & ~(largest - 1);
    if (base < start)
        return false;
    for (int i = 0; i < n_mem; i++) {
        if (mem_reqs[i].is64 && !include64)
            continue;
        mem_reqs[i].addr = base; /* descending powers of two stay aligned */
        base += mem_reqs[i].size;
    }
    return true;
}

static void place_mem(const struct ram_layout *ram)
{
    uint32_t start = align_up32(ram->low_end, 0x10000000u);
    if (start < PCI_MEM_WINDOW_MIN)
        start = PCI_MEM_WINDOW_MIN;
    info("window mem 0x%08x-0x%08x io 0x%04x-0x%04x", start, PCI_MEM_WINDOW_END - 1,
         PCI_IO_WINDOW_START, PCI_IO_WINDOW_END - 1);
    if (place_mem_32(start, PCI_MEM_WINDOW_END, true))
        return;
    /* Not everything fits below 4 GiB: 64-bit BARs go above RAM at 4 GiB+. */
    if (!place_mem_32(start, PCI_MEM_WINDOW_END, false))
        fatal("PCI memory window 0x%08x-0x%08x too small for the 32-bit BARs", start,
              PCI_MEM_WINDOW_END - 1);
    uint64_t next = (0x100000000ull + ram->high_size + 0x3fffffffull) & ~0x3fffffffull;
    for (int i = 0; i < n_mem; i++) {
        if (!mem_reqs[i].is64)
            continue;
        next = (next + mem_reqs[i].size - 1) & ~(mem_reqs[i].size - 1);
        mem_reqs[i].addr = next;
        next += mem_reqs[i].size;
    }
    info("64-bit BARs placed above 4 GiB");
}

static void program(const struct bar_req *r)
{
    uint16_t bdf = r->dev->bdf;
    if (r->index == BAR_ROM) {
        /* Sized and placed, but left disabled: nothing here runs ROMs. */
        pci_write32(bdf, PCI_ROM_ADDRESS, (uint32_t)r->addr & 0xfffff800u);
        return;
    }
    uint8_t off = PCI_BAR0 + 4 * r->index;
    pci_write32(bdf, off, (uint32_t)r->addr);
    if (r->is64)
        pci_write32(bdf, off + 4, (uint32_t)(r->addr >> 32));
}

static void enable_decoding(void)
{
    for (int i = 0; i < pci_count(); i++) {
        const struct pci_dev *d = pci_get(i);
        uint16_t cmd = 0;
        for (int b = 0; b < 6; b++) {
            if (d->bar[b].type == PCI_BAR_IO)
                cmd |= PCI_CMD_IO;
            else if (d->bar[b].type == PCI_BAR_MEM)
                cmd |= PCI_CMD_MEMORY;
        }
        if (cmd && (d->header_type & 0x7f) == 0)
            pci_enable(d, cmd | PCI_CMD_MASTER);
    }
}

static void route_interrupts(void)
{
    const struct pci_dev *isa = pci_find(0x8086, 0x7000, 0);
    if (!isa) {
        info("no PIIX3 (8086:7000): INTx lines not routed");
        return;
    }
    uint16_t elcr = 0;
    for (int p = 0; p < 4; p++) {
        pci_write8(isa->bdf, PIIX3_PIRQ_ROUTE + p, pirq_irq[p]);
        elcr |= (uint16_t)(1u << pirq_irq[p]);
    }
    /* PCI interrupts are level-triggered and shared. */
    outb(ELCR1, inb(ELCR1) | (elcr & 0xff));
    outb(ELCR2, inb(ELCR2) | (elcr >> 8));
    info("pirq A-D -> irq %u %u %u %u, elcr 0x%04x", pirq_irq[0], pirq_irq[1], pirq_irq[2],
         pirq_irq[3], (unsigned)(inb(ELCR1) | inb(ELCR2) << 8));

    for (int i = 0; i < pci_count(); i++) {
        const struct pci_dev *d = pci_get(i);
        if (d->irq_pin < 1 || d->irq_pin > 4)
            continue;
        /* The i440FX board's wiring, as QEMU's PIIX3 model routes it. */
        unsigned pirq = (PCI_SLOT(d->bdf) - 1 + d->irq_pin - 1) & 3;
        pci_write8(d->bdf, PCI_INTERRUPT_LINE, pirq_irq[pirq]);
    }
}

void pci_setup(const struct ram_layout *ram)
{
    pci_scan();
    collect();
    place_io();
    place_mem(ram);
    for (int i = 0; i < n_io; i++)
        program(&io_reqs[i]);
    for (int i = 0; i < n_mem; i++)
        program(&mem_reqs[i]);
    enable_decoding();
    route_interrupts();

    /* Read everything back: the report shows what the devices now hold. */
    int n = pci_scan();
    for (int i = 0; i < n; i++)
        pci_print(pci_get(i), "bios: ");
}
