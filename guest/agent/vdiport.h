/* VDIPort (PCI 1b36:0105): the legacy transport of the SPICE guest agent.
 *
 * BAR0 is three 32-bit I/O registers, BAR1 a RAM block with two rings of
 * 32 packets (512 bytes: generation, size, 504 data bytes): `input` carries
 * guest -> host bytes, `output` host -> guest.  Packets stamped with an old
 * generation are stale (a previous session) and are skipped.  The driver
 * presents a byte stream both ways.
 */
#ifndef AGENT_VDIPORT_H
#define AGENT_VDIPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/pci.h"

#define VDIPORT_VENDOR 0x1b36
#define VDIPORT_DEVICE 0x0105
#define VDIPORT_MAGIC 0x50494456u /* "VDIP" */
#define VDIPORT_IO_CONNECTION 0
#define VDIPORT_IO_NOTIFY 4
#define VDIPORT_IO_UPDATE_IRQ 8
#define VDIPORT_INTERRUPT 1u
#define VDIPORT_SLOTS 32
#define VDIPORT_PACKET_DATA 504

struct vdiport_packet {
    uint32_t gen;
    uint32_t size;
    uint8_t data[VDIPORT_PACKET_DATA];
} __attribute__((packed));

struct vdiport_ring {
    uint32_t num_items, prod, notify_on_prod, cons, notify_on_cons;
    struct vdiport_packet items[VDIPORT_SLOTS];
} __attribute__((packed));

struct vdiport_ram {
    uint32_t magic;
    uint32_t generation;
    uint32_t int_pending;
    uint32_t int_mask;
    struct vdiport_ring input;
    struct vdiport_ring output;
    uint32_t reserved[32];
} __attribute__((packed));

struct vdiport {
    const struct pci_dev *pci;
    uint16_t io;
    uint8_t irq;
    volatile struct vdiport_ram *ram;
    uint32_t generation;      /* of the current connection, 0 = not connected */
    uint32_t read_pos;        /* bytes consumed of the packet at output.cons */
    volatile uint32_t irqs;   /* interrupts taken */
    uint32_t stale_packets;   /* output packets of another generation skipped */
    uint32_t bytes_in, bytes_out;
};

/* Find and map the device; false if there is none (QEMU has no VDIPort). */
bool vdiport_probe(struct vdiport *v);
/* Connect (read CONNECTION): starts a generation, enables the interrupt.
 * Returns the generation (0: the device said we were connected already). */
uint32_t vdiport_connect(struct vdiport *v);
void vdiport_disconnect(struct vdiport *v);
/* Write all of `data`, waiting (sti; hlt) for room; false on timeout. */
bool vdiport_write(struct vdiport *v, const void *data, uint32_t len, uint32_t timeout_ms);
/* Read up to `max` bytes that are there now (no waiting). */
uint32_t vdiport_read(struct vdiport *v, void *buf, uint32_t max);
/* True if bytes are waiting; arms the interrupt for the next ones if not. */
bool vdiport_readable(struct vdiport *v);
/* The generation the device reports now (it changes when the host side of
 * the session goes away). */
uint32_t vdiport_device_generation(const struct vdiport *v);

#endif
