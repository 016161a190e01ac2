#include "pci.h"
#include "console.h"
#include "io.h"

#define PCI_ADDR_PORT 0xcf8
#define PCI_DATA_PORT 0xcfc

static void select_reg(uint16_t bdf, uint8_t off)
{
    outl(PCI_ADDR_PORT, 0x80000000u | ((uint32_t)bdf << 8) | (off & 0xfc));
}

uint32_t pci_read32(uint16_t bdf, uint8_t off)
{
    select_reg(bdf, off);
    return inl(PCI_DATA_PORT);
}

uint16_t pci_read16(uint16_t bdf, uint8_t off)
{
    select_reg(bdf, off);
    return inw(PCI_DATA_PORT + (off & 2));
}

uint8_t pci_read8(uint16_t bdf, uint8_t off)
{
    select_reg(bdf, off);
    return inb(PCI_DATA_PORT + (off & 3));
}

void pci_write32(uint16_t bdf, uint8_t off, uint32_t v)
{
    select_reg(bdf, off);
    outl(PCI_DATA_PORT, v);
}

void pci_write16(uint16_t bdf, uint8_t off, uint16_t v)
{
    select_reg(bdf, off);
    outw(PCI_DATA_PORT + (off & 2), v);
}

void pci_write8(uint16_t bdf, uint8_t off, uint8_t v)
{
    select_reg(bdf, off);
    outb(PCI_DATA_PORT + (off & 3), v);
}

/* Size the BAR at `off` by writing all-ones and reading the mask back.
 * Returns the number of BAR slots it uses (2 for a 64-bit BAR). */
static int size_bar(uint16_t bdf, uint8_t off, struct pci_bar *b)
{
    uint32_t orig = pci_read32(bdf, off);
    pci_write32(bdf, off, 0xffffffffu);
    uint32_t mask = pci_read32(bdf, off);
    pci_write32(bdf, off, orig);
    b->type = PCI_BAR_NONE;
    b->size = 0;
    b->addr = 0;
    b->is64 = b->prefetch = b->enabled = false;
    if (orig & 1) {
        uint32_t m = mask & 0xfffffffcu;
        if (!m)
            return 1;
        /* I/O BARs may implement only the low 16 bits. */
        m |= 0xffff0000u;
        b->type = PCI_BAR_IO;
        b->size = (uint32_t)(~m + 1);
        b->addr = orig & 0xfffffffcu;
        return 1;
    }
    uint64_t m = mask & 0xfffffff0u;
    uint64_t addr = orig & 0xfffffff0u;
    int slots = 1;
    if (((orig >> 1) & 3) == 2 && off < PCI_BAR0 + 20) {
        uint32_t orig_hi = pci_read32(bdf, off + 4);
        pci_write32(bdf, off + 4, 0xffffffffu);
        uint32_t mask_hi = pci_read32(bdf, off + 4);
        pci_write32(bdf, off + 4, orig_hi);
        m |= (uint64_t)mask_hi << 32;
        addr |= (uint64_t)orig_hi << 32;
        b->is64 = true;
        slots = 2;
    } else {
        m |= 0xffffffff00000000ull;
    }
    if (m == 0 || (!b->is64 && (uint32_t)m == 0))
        return slots;
    b->type = PCI_BAR_MEM;
    b->size = ~m + 1;
    b->addr = addr;
    b->prefetch = (orig & 8) != 0;
    return slots;
}

static void size_rom(uint16_t bdf, struct pci_bar *b)
{
    uint32_t orig = pci_read32(bdf, PCI_ROM_ADDRESS);
    pci_write32(bdf, PCI_ROM_ADDRESS, 0xfffff800u);
    uint32_t mask = pci_read32(bdf, PCI_ROM_ADDRESS) & 0xfffff800u;
    pci_write32(bdf, PCI_ROM_ADDRESS, orig);
    b->type = mask ? PCI_BAR_MEM : PCI_BAR_NONE;
    b->size = mask ? (uint32_t)(~mask + 1) : 0;
    b->addr = mask ? (orig & 0xfffff800u) : 0;
    b->is64 = b->prefetch = false;
    b->enabled = mask && (orig & PCI_ROM_ENABLE);
}

bool pci_probe(uint16_t bdf, struct pci_dev *d)
{
    uint32_t id = pci_read32(bdf, PCI_VENDOR_ID);
    if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
        return false;
    d->bdf = bdf;
    d->vendor = id & 0xffff;
    d->device = id >> 16;
    uint32_t rc = pci_read32(bdf, PCI_REVISION);
    d->revision = rc & 0xff;
    d->class_code = rc >> 8;
    d->header_type = pci_read8(bdf, PCI_HEADER_TYPE);
    d->irq_pin = pci_read8(bdf, PCI_INTERRUPT_PIN);
    d->irq_line = d->irq_pin ? pci_read8(bdf, PCI_INTERRUPT_LINE) : PCI_IRQ_NONE;
    for (int i = 0; i < 6; i++) {
        d->bar[i].type = PCI_BAR_NONE;
        d->bar[i].size = 0;
    }
    d->rom.type = PCI_BAR_NONE;
    d->rom.size = 0;
    if ((d->header_type & 0x7f) != 0)
        return true; /* bridges: identity only */

    /* Decoding off while BARs hold all-ones, so nothing appears at a bogus
     * address for a moment. */
    uint16_t cmd = pci_read16(bdf, PCI_COMMAND);
    pci_write16(bdf, PCI_COMMAND, cmd & ~(PCI_CMD_IO | PCI_CMD_MEMORY));
    for (int i = 0; i < 6;) {
        i += size_bar(bdf, PCI_BAR0 + 4 * i, &d->bar[i]);
    }
    size_rom(bdf, &d->rom);
    pci_write16(bdf, PCI_COMMAND, cmd);
    return true;
}

static struct pci_dev devices[PCI_MAX_DEVICES];
static int ndevices;

int pci_scan(void)
{
    ndevices = 0;
    for (int slot = 0; slot < 32; slot++) {
        for (int fn = 0; fn < 8 && ndevices < PCI_MAX_DEVICES; fn++) {
            uint16_t bdf = PCI_BDF(0, slot, fn);
            if (!pci_probe(bdf, &devices[ndevices])) {
                if (fn == 0)
                    break;
                continue;
            }
            bool multi = devices[ndevices].header_type & 0x80;
            ndevices++;
            if (fn == 0 && !multi)
                break;
        }
    }
    return ndevices;
}

int pci_count(void)
{
    return ndevices;
}

const struct pci_dev *pci_get(int i)
{
    return (i >= 0 && i < ndevices) ? &devices[i] : 0;
}

const struct pci_dev *pci_find(uint16_t vendor, uint16_t device, int nth)
{
    for (int i = 0; i < ndevices; i++)
        if (devices[i].vendor == vendor && devices[i].device == device && nth-- == 0)
            return &devices[i];
    return 0;
}

const struct pci_dev *pci_find_class(uint32_t class_code, int nth)
{
    for (int i = 0; i < ndevices; i++)
        if ((devices[i].class_code >> 8) == (class_code >> 8) && nth-- == 0)
            return &devices[i];
    return 0;
}

void pci_enable(const struct pci_dev *dev, uint16_t cmd_bits)
{
    uint16_t cmd = pci_read16(dev->bdf, PCI_COMMAND);
    pci_write16(dev->bdf, PCI_COMMAND, cmd | cmd_bits);
}

static void print_bar(const char *prefix, const char *name, const struct pci_bar *b)
{
    if (b->type == PCI_BAR_IO)
        printf("%s  %s io 0x%llx size 0x%llx\n", prefix, name, b->addr, b->size);
    else
        printf("%s  %s %s%s 0x%llx size 0x%llx\n", prefix, name, b->is64 ? "mem64" : "mem",
               b->prefetch ? " pref" : "", b->addr, b->size);
}

void pci_print(const struct pci_dev *d, const char *prefix)
{
    printf("%spci %02x:%02x.%x %04x:%04x class %06x", prefix, PCI_BUS(d->bdf),
           PCI_SLOT(d->bdf), PCI_FUNC(d->bdf), d->vendor, d->device, d->class_code);
    if (d->irq_pin)
        printf(" irq %u\n", d->irq_line);
    else
        printf(" irq none\n");
    static const char *const names[6] = {"bar0", "bar1", "bar2", "bar3", "bar4", "bar5"};
    for (int i = 0; i < 6; i++)
        if (d->bar[i].type != PCI_BAR_NONE)
            print_bar(prefix, names[i], &d->bar[i]);
    if (d->rom.type != PCI_BAR_NONE)
        print_bar(prefix, "rom", &d->rom);
}
