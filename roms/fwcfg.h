/* QEMU firmware configuration interface, I/O port flavour: selector 0x510
 * (16-bit write), data 0x511 (8-bit reads), and the optional DMA interface
 * at 0x514 (used when the ID item advertises it; much faster on spicevm,
 * where every port access is a Python call). */
#ifndef FWCFG_H
#define FWCFG_H

#include <stdbool.h>
#include <stdint.h>

/* Selector keys (include/standard-headers/linux/qemu_fw_cfg.h). */
enum {
    FW_CFG_SIGNATURE = 0x00,
    FW_CFG_ID = 0x01,
    FW_CFG_RAM_SIZE = 0x03,
    FW_CFG_KERNEL_ADDR = 0x07,
    FW_CFG_KERNEL_SIZE = 0x08,
    FW_CFG_INITRD_ADDR = 0x0a,
    FW_CFG_INITRD_SIZE = 0x0b,
    FW_CFG_KERNEL_ENTRY = 0x10,
    FW_CFG_KERNEL_DATA = 0x11,
    FW_CFG_INITRD_DATA = 0x12,
    FW_CFG_CMDLINE_SIZE = 0x14,
    FW_CFG_CMDLINE_DATA = 0x15,
    FW_CFG_FILE_DIR = 0x19,
};

/* Probe for the "QEMU" signature; picks DMA when the ID says it exists. */
bool fwcfg_init(void);
/* True when fwcfg_init() found the device / chose DMA transfers. */
bool fwcfg_present(void);
bool fwcfg_uses_dma(void);
/* Read len bytes of item `key` starting at byte `offset` into dst (any
 * physical address).  Reads past the end of an item give zeros. */
void fwcfg_read_at(uint16_t key, uint32_t offset, void *dst, uint32_t len);
/* A little-endian integer item (QEMU stores them LE); 0 when absent. */
uint32_t fwcfg_read32(uint16_t key);
uint64_t fwcfg_read64(uint16_t key);
/* Look a file up in the directory (key 0x19).  Fills *key and *size. */
bool fwcfg_find_file(const char *name, uint16_t *key, uint32_t *size);

#endif
