#include "fwcfg.h"
#include "bios.h"
#include "lib/io.h"
#include "lib/string.h"

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_PORT_DMA_HI 0x514
#define FW_CFG_PORT_DMA_LO 0x518
#define FW_CFG_VERSION_DMA 0x02

#define DMA_CTL_ERROR 0x01
#define DMA_CTL_READ 0x02
#define DMA_CTL_SKIP 0x04

/* DMA control block; every field big-endian. */
struct dma_access {
    uint32_t control;
    uint32_t length;
    uint64_t address;
} __attribute__((packed, aligned(16)));

static bool present, use_dma;
static uint16_t cur_key = 0xffff;
static uint32_t cur_off;
static struct dma_access dma;

static uint32_t bswap32(uint32_t v)
{
    __asm__("bswap %0" : "+r"(v));
    return v;
}

static void select_key(uint16_t key)
{
    outw(FW_CFG_PORT_SEL, key);
    cur_key = key;
    cur_off = 0;
}

static void dma_op(uint32_t control, void *dst, uint32_t len)
{
    dma.control = bswap32(control);
    dma.length = bswap32(len);
    dma.address = (uint64_t)bswap32((uint32_t)(uintptr_t)dst) << 32; /* BE 64-bit */
    __asm__ volatile("" : : : "memory");
    outl(FW_CFG_PORT_DMA_HI, 0);
    outl(FW_CFG_PORT_DMA_LO, bswap32((uint32_t)(uintptr_t)&dma));
    /* QEMU completes synchronously; a device may also finish later. */
    for (;;) {
        uint32_t c = bswap32(*(volatile uint32_t *)&dma.control);
        if (c & DMA_CTL_ERROR)
            fatal("fw_cfg: DMA transfer of %u bytes for key 0x%04x failed", len, cur_key);
        if (c == 0)
            break;
    }
}

static void read_here(void *dst, uint32_t len)
{
    if (!len)
        return;
    if (use_dma) {
        dma_op(DMA_CTL_READ, dst, len);
    } else {
        uint8_t *p = dst;
        for (uint32_t i = 0; i < len; i++)
            p[i] = inb(FW_CFG_PORT_DATA);
    }
    cur_off += len;
}

static void skip_here(uint32_t len)
{
    if (!len)
        return;
    if (use_dma) {
        dma_op(DMA_CTL_SKIP, 0, len);
    } else {
        for (uint32_t i = 0; i < len; i++)
            (void)inb(FW_CFG_PORT_DATA);
    }
    cur_off += len;
}

bool fwcfg_init(void)
{
    char sig[4];
    select_key(FW_CFG_SIGNATURE);
    for (int i = 0; i < 4; i++)
        sig[i] = (char)inb(FW_CFG_PORT_DATA);
    cur_off = 4;
    present = memcmp(sig, "QEMU", 4) == 0;
    if (present)
        use_dma = (fwcfg_read32(FW_CFG_ID) & FW_CFG_VERSION_DMA) != 0;
    return present;
}

bool fwcfg_present(void)
{
    return present;
}

bool fwcfg_uses_dma(void)
{
    return use_dma;
}

void fwcfg_read_at(uint16_t key, uint32_t offset, void *dst, uint32_t len)
{
    if (key != cur_key || offset < cur_off)
        select_key(key);
    skip_here(offset - cur_off);
    read_here(dst, len);
}

uint32_t fwcfg_read32(uint16_t key)
{
    uint32_t v = 0;
    if (present)
        fwcfg_read_at(key, 0, &v, 4);
    return v;
}

uint64_t fwcfg_read64(uint16_t key)
{
    uint64_t v = 0;
    if (present)
        fwcfg_read_at(key, 0, &v, 8);
    return v;
}

bool fwcfg_find_file(const char *name, uint16_t *key, uint32_t *size)
{
    if (!present)
        return false;
    uint32_t count;
    fwcfg_read_at(FW_CFG_FILE_DIR, 0, &count, 4);
    count = bswap32(count);
    if (count > 4096)
        count = 4096; /* a corrupt directory must not keep us here forever */
    struct {
        uint32_t size;
        uint16_t select;
        uint16_t reserved;
        char name[56];
    } __attribute__((packed)) entry;
    for (uint32_t i = 0; i < count; i++) {
        fwcfg_read_at(FW_CFG_FILE_DIR, 4 + i * sizeof(entry), &entry, sizeof(entry));
        entry.name[55] = '\0';
        if (strcmp(entry.name, name) == 0) {
            *key = (uint16_t)((entry.select >> 8) | (entry.select << 8));
            *size = bswap32(entry.size);
            return true;
        }
    }
    return false;
}
