/* VDIPort driver (see vdiport.h). */
#include "agent/vdiport.h"

#include "lib/console.h"
#include "lib/cpu.h"
#include "lib/io.h"
#include "lib/irq.h"
#include "lib/pit.h"
#include "lib/string.h"

static void vdiport_irq(unsigned irq, void *ctx)
{
    struct vdiport *v = ctx;
    uint32_t pending = __atomic_exchange_n(&v->ram->int_pending, 0, __ATOMIC_SEQ_CST);
    if (!pending)
        return;
    v->irqs++;
    outl(v->io + VDIPORT_IO_UPDATE_IRQ, 0);
}

bool vdiport_probe(struct vdiport *v)
{
    memset(v, 0, sizeof(*v));
    if (pci_count() == 0)
        pci_scan();
    const struct pci_dev *d = pci_find(VDIPORT_VENDOR, VDIPORT_DEVICE, 0);
    if (!d || d->bar[0].type != PCI_BAR_IO || d->bar[1].type != PCI_BAR_MEM ||
        d->bar[1].size < sizeof(struct vdiport_ram) || (d->bar[1].addr >> 32))
        return false;
    pci_enable(d, PCI_CMD_IO | PCI_CMD_MEMORY | PCI_CMD_MASTER);
    v->pci = d;
    v->io = (uint16_t)d->bar[0].addr;
    v->irq = d->irq_line;
    v->ram = (volatile struct vdiport_ram *)(uintptr_t)d->bar[1].addr;
    return v->ram->magic == VDIPORT_MAGIC;
}

uint32_t vdiport_connect(struct vdiport *v)
{
    if (!pit_hz())
        pit_init(100);
    if (v->irq != PCI_IRQ_NONE)
        irq_register(v->irq, vdiport_irq, v);
    uint32_t gen = inl(v->io + VDIPORT_IO_CONNECTION);
    if (gen) {
        v->generation = gen;
        v->read_pos = 0;
        v->ram->int_mask = VDIPORT_INTERRUPT;
        outl(v->io + VDIPORT_IO_UPDATE_IRQ, 0);
    }
    return gen;
}

void vdiport_disconnect(struct vdiport *v)
{
    outl(v->io + VDIPORT_IO_CONNECTION, 0);
    v->ram->int_mask = 0;
    outl(v->io + VDIPORT_IO_UPDATE_IRQ, 0);
    if (v->irq != PCI_IRQ_NONE)
        irq_unregister(v->irq, vdiport_irq, v);
    v->generation = 0;
}

uint32_t vdiport_device_generation(const struct vdiport *v)
{
    return v->ram->generation;
}

static bool input_has_room(volatile struct vdiport_ring *r)
{
    return r->prod - r->cons < VDIPORT_SLOTS;
}

bool vdiport_write(struct vdiport *v, const void *data, uint32_t len, uint32_t timeout_ms)
{
    volatile struct vdiport_ring *r = &v->ram->input;
    const uint8_t *p = data;
    uint64_t deadline = pit_uptime_ms() + timeout_ms;
    bool notify = false;
    while (len) {
        if (!input_has_room(r)) {
            /* ask for an interrupt when the host takes a packet */
            r->notify_on_cons = r->cons + 1;
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (notify) {
                outl(v->io + VDIPORT_IO_NOTIFY, 0);
                notify = false;
            }
            uint32_t flags = irq_save();
            while (!input_has_room(r) && pit_uptime_ms() < deadline) {
                cpu_idle();
                cli();
            }
            irq_restore(flags);
            if (!input_has_room(r))
                return false;
        }
        uint32_t prod = r->prod;
        volatile struct vdiport_packet *pk = &r->items[prod % VDIPORT_SLOTS];
        uint32_t n = len < VDIPORT_PACKET_DATA ? len : VDIPORT_PACKET_DATA;
        pk->gen = v->generation;
        pk->size = n;
        memcpy((void *)pk->data, p, n);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        r->prod = prod + 1;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        notify |= r->prod == r->notify_on_prod;
        p += n;
        len -= n;
        v->bytes_out += n;
    }
    /* the host armed notify_on_prod when it found the ring empty */
    if (notify)
        outl(v->io + VDIPORT_IO_NOTIFY, 0);
    return true;
}

bool vdiport_readable(struct vdiport *v)
{
    volatile struct vdiport_ring *r = &v->ram->output;
    if (r->cons != r->prod)
        return true;
    r->notify_on_prod = r->prod + 1;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return r->cons != r->prod;
}

uint32_t vdiport_read(struct vdiport *v, void *buf, uint32_t max)
{
    volatile struct vdiport_ring *r = &v->ram->output;
    uint8_t *out = buf;
    uint32_t got = 0;
    bool made_room = false;
    while (got < max && r->cons != r->prod) {
        volatile struct vdiport_packet *pk = &r->items[r->cons % VDIPORT_SLOTS];
        uint32_t size = pk->size;
        if (pk->gen != v->generation || size > VDIPORT_PACKET_DATA) {
            v->stale_packets++;
            v->read_pos = 0;
        } else {
            uint32_t n = size - v->read_pos;
            if (n > max - got)
                n = max - got;
            memcpy(out + got, (const void *)(pk->data + v->read_pos), n);
            got += n;
            v->read_pos += n;
            if (v->read_pos < size)
                break;
            v->read_pos = 0;
        }
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        r->cons++;
        made_room |= r->cons == r->notify_on_cons;
    }
    if (made_room)
        outl(v->io + VDIPORT_IO_NOTIFY, 0);
    v->bytes_in += got;
    return got;
}
