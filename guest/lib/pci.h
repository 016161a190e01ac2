/* PCI configuration access (mechanism #1, ports 0xcf8/0xcfc) and bus-0
 * enumeration with BAR sizing.
 *
 * A device is addressed by its bdf: (bus << 8) | (slot << 3) | function.
 * pci_scan() sizes BARs by writing all-ones with decoding switched off for
 * that moment, so call it before drivers start using their devices.
 */
#ifndef LIB_PCI_H
#define LIB_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_BDF(bus, slot, fn) ((uint16_t)(((bus) << 8) | ((slot) << 3) | (fn)))
#define PCI_SLOT(bdf) (((bdf) >> 3) & 0x1f)
#define PCI_FUNC(bdf) ((bdf) & 7)
#define PCI_BUS(bdf) ((bdf) >> 8)

/* Configuration space offsets. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID 0x2e
#define PCI_ROM_ADDRESS 0x30
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

/* Command register bits. */
#define PCI_CMD_IO 0x0001
#define PCI_CMD_MEMORY 0x0002
#define PCI_CMD_MASTER 0x0004
#define PCI_CMD_INTX_DISABLE 0x0400

#define PCI_ROM_ENABLE 0x1
#define PCI_MAX_DEVICES 32
#define PCI_IRQ_NONE 0xff

enum pci_bar_type { PCI_BAR_NONE = 0, PCI_BAR_IO, PCI_BAR_MEM };

struct pci_bar {
    uint64_t addr;   /* programmed address (ROM: without the enable bit) */
    uint64_t size;   /* 0: BAR not implemented */
    uint8_t type;    /* enum pci_bar_type */
    bool is64;       /* 64-bit memory BAR (uses the next BAR slot too) */
    bool prefetch;   /* prefetchable memory */
    bool enabled;    /* ROM only: the enable bit is set */
};

struct pci_dev {
    uint16_t bdf;
    uint16_t vendor, device;
    uint32_t class_code; /* base << 16 | sub << 8 | prog-if */
    uint8_t revision, header_type;
    uint8_t irq_pin;     /* 0: none, 1..4: INTA..INTD */
    uint8_t irq_line;    /* interrupt line register (PCI_IRQ_NONE if no pin) */
    struct pci_bar bar[6];
    struct pci_bar rom;
};

/* Raw configuration reads and writes (offset must be naturally aligned). */
uint32_t pci_read32(uint16_t bdf, uint8_t off);
uint16_t pci_read16(uint16_t bdf, uint8_t off);
uint8_t pci_read8(uint16_t bdf, uint8_t off);
void pci_write32(uint16_t bdf, uint8_t off, uint32_t v);
void pci_write16(uint16_t bdf, uint8_t off, uint16_t v);
void pci_write8(uint16_t bdf, uint8_t off, uint8_t v);

/* Read identity, IRQ and BARs (with sizes) of the function at bdf into
 * *dev.  Returns false when no function answers there. */
bool pci_probe(uint16_t bdf, struct pci_dev *dev);

/* Enumerate bus 0 (all slots, all functions of multi-function devices)
 * into the internal table.  Returns the number of functions found
 * (at most PCI_MAX_DEVICES). */
int pci_scan(void);
/* Number of functions found by the last pci_scan(). */
int pci_count(void);
/* Function i of the last scan (NULL when out of range). */
const struct pci_dev *pci_get(int i);
/* The nth (0-based) function with this vendor:device, or NULL. */
const struct pci_dev *pci_find(uint16_t vendor, uint16_t device, int nth);
/* The nth function whose class code (base << 16 | sub << 8) matches
 * class_code with the prog-if ignored, or NULL. */
const struct pci_dev *pci_find_class(uint32_t class_code, int nth);

/* Set bits in the command register (e.g. PCI_CMD_MEMORY | PCI_CMD_MASTER). */
void pci_enable(const struct pci_dev *dev, uint16_t cmd_bits);

/* Print one function in the stable report format, every line starting
 * with `prefix`:
 *   pci 00:02.0 1b36:0100 class 030000 irq 11
 *     bar0 mem 0xf4000000 size 0x4000000
 *     bar3 io 0xc000 size 0x20
 *     bar4 mem64 pref 0x800000000 size 0x40000000
 *     rom mem 0xfebc0000 size 0x10000
 * ("irq none" when the function has no interrupt pin). */
void pci_print(const struct pci_dev *dev, const char *prefix);

#endif
