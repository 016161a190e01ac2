#include "boot.h"
#include "bios.h"
#include "fwcfg.h"
#include "lib/string.h"

#define MB_HEADER_MAGIC 0x1BADB002u
#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_SEARCH_LEN 8192u
#define MB_FLAG_VIDEO (1u << 2)
#define MB_FLAG_AOUT_KLUDGE (1u << 16)
#define MB_FLAGS_SUPPORTED_REQUIRED 0x0007u /* bits 0-2; bits 3-15 are unknown */
#define QEMU_MBI_SIZE 88u

#define ELF_PT_LOAD 1
#define ELF_EM_386 3
#define MAX_PHDRS 64

/* Where the spicevm-specific fw_cfg files put the pieces (the way to test
 * the raw-ELF contract on QEMU, see README.md). */
#define FILE_KERNEL "opt/org.spicevm/kernel"
#define FILE_CMDLINE "opt/org.spicevm/cmdline"
#define FILE_INITRD "opt/org.spicevm/initrd"

struct item {
    uint16_t key;
    uint32_t size;
    const char *name;
};

struct elf32_ehdr {
    uint8_t ident[16];
    uint16_t type, machine;
    uint32_t version, entry, phoff, shoff, flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
} __attribute__((packed));

struct elf32_phdr {
    uint32_t type, offset, vaddr, paddr, filesz, memsz, flags, align;
} __attribute__((packed));

struct loaded {
    uint32_t lo, hi; /* kernel image range, bss included */
    uint32_t entry;
};

static const struct ram_layout *ram_info;

/* Every range the kernel, a module or the image occupies must be RAM above
 * 1 MiB below the RAM end, so nothing the BIOS needs is overwritten. */
static void check_range(const char *what, uint32_t addr, uint32_t len)
{
    uint64_t end = (uint64_t)addr + len;
    if (addr < KERNEL_MIN_ADDR || end > ram_info->low_end)
        fatal("%s 0x%08x-0x%08llx lies outside RAM 0x%08x-0x%08x", what, addr, end,
              KERNEL_MIN_ADDR, ram_info->low_end);
}

static struct item find_item(const char *file, uint16_t key_data, uint16_t key_size,
                             const char *name)
{
    struct item it = {0, 0, name};
    if (fwcfg_find_file(file, &it.key, &it.size)) {
        it.name = file;
        return it;
    }
    it.key = key_data;
    it.size = fwcfg_read32(key_size);
    return it;
}

/* The Multiboot header's offset in the file, or fatal. */
static uint32_t find_header(const uint8_t *buf, uint32_t n, const uint32_t **hdr)
{
    for (uint32_t i = 0; i + 12 <= n; i += 4) {
        const uint32_t *h = (const uint32_t *)(buf + i);
        if (h[0] == MB_HEADER_MAGIC && h[0] + h[1] + h[2] == 0) {
            *hdr = h;
            return i;
        }
    }
    fatal("kernel: no Multiboot v1 header in the first %u bytes", n);
}

static void load_aout(const struct item *k, const uint32_t *h, uint32_t hoff, uint32_t n,
                      struct loaded *out)
{
    if (hoff + 32 > n)
        fatal("kernel: Multiboot header address fields cut off");
    uint32_t header_addr = h[3], load_addr = h[4], load_end = h[5], bss_end = h[6];
    if (header_addr < load_addr || header_addr - load_addr > hoff)
        fatal("kernel: bad Multiboot header_addr 0x%x / load_addr 0x%x", header_addr,
              load_addr);
    uint32_t text_off = hoff - (header_addr - load_addr);
    uint32_t load_size;
    if (load_end) {
        if (load_end < load_addr)
            fatal("kernel: load_end_addr 0x%x below load_addr 0x%x", load_end, load_addr);
        load_size = load_end - load_addr;
    } else {
        load_size = k->size - text_off;
    }
    if ((uint64_t)text_off + load_size > k->size)
        fatal("kernel: load range runs past the end of the %u-byte file", k->size);
    uint32_t mem_end = load_addr + load_size;
    if (bss_end) {
        if (bss_end < mem_end)
            fatal("kernel: bss_end_addr 0x%x below the loaded image end 0x%x", bss_end, mem_end);
        mem_end = bss_end;
    }
    check_range("kernel image", load_addr, mem_end - load_addr);
    fwcfg_read_at(k->key, text_off, (void *)(uintptr_t)load_addr, load_size);
    memset((void *)(uintptr_t)(load_addr + load_size), 0, mem_end - load_addr - load_size);
    info("kernel: a.out-kludge image 0x%08x-0x%08x from file offset 0x%x, bss to 0x%08x",
         load_addr, load_addr + load_size, text_off, mem_end);
    out->lo = load_addr;
    out->hi = mem_end;
    out->entry = h[7];
}

static void load_elf(const struct item *k, const uint8_t *buf, uint32_t n, struct loaded *out)
{
    const struct elf32_ehdr *eh = (const void *)buf;
    if (n < sizeof(*eh) || memcmp(eh->ident, "\177ELF", 4) != 0)
        fatal("kernel: not an ELF file and no a.out-kludge fields in its Multiboot header");
    if (eh->ident[4] != 1 || eh->ident[5] != 1 || eh->machine != ELF_EM_386)
        fatal("kernel: ELF is not 32-bit little-endian i386 (class %u, machine %u)",
              eh->ident[4], eh->machine);
    if (eh->phentsize != sizeof(struct elf32_phdr) || eh->phnum == 0 || eh->phnum > MAX_PHDRS)
        fatal("kernel: unsupported ELF program headers (%u of %u bytes)", eh->phnum,
              eh->phentsize);
    uint32_t ph_bytes = eh->phnum * sizeof(struct elf32_phdr);
    if ((uint64_t)eh->phoff + ph_bytes > k->size)
        fatal("kernel: ELF program headers run past the end of the file");
    /* Copy the headers out of the scratch buffer before segments load. */
    static struct elf32_phdr ph[MAX_PHDRS];
    fwcfg_read_at(k->key, eh->phoff, ph, ph_bytes);
    uint32_t entry = eh->entry, phnum = eh->phnum;

    out->lo = 0xffffffffu;
    out->hi = 0;
    for (uint32_t i = 0; i < phnum; i++) {
        const struct elf32_phdr *p = &ph[i];
        if (p->type != ELF_PT_LOAD || p->memsz == 0)
            continue;
        if (p->filesz > p->memsz || (uint64_t)p->offset + p->filesz > k->size)
            fatal("kernel: ELF segment %u (offset 0x%x, filesz 0x%x, memsz 0x%x) is malformed",
                  i, p->offset, p->filesz, p->memsz);
        check_range("kernel segment", p->paddr, p->memsz);
        fwcfg_read_at(k->key, p->offset, (void *)(uintptr_t)p->paddr, p->filesz);
        memset((void *)(uintptr_t)(p->paddr + p->filesz), 0, p->memsz - p->filesz);
        info("kernel: segment 0x%08x-0x%08x from file offset 0x%x, bss to 0x%08x", p->paddr,
             p->paddr + p->filesz, p->offset, p->paddr + p->memsz);
        if (p->paddr < out->lo)
            out->lo = p->paddr;
        if (p->paddr + p->memsz > out->hi)
            out->hi = p->paddr + p->memsz;
    }
    if (out->hi == 0)
        fatal("kernel: ELF file has no loadable segment");
    out->entry = entry;
}

static uint32_t load_cmdline(void)
{
    struct item c = find_item(FILE_CMDLINE, FW_CFG_CMDLINE_DATA, FW_CFG_CMDLINE_SIZE, "cmdline");
    char *dst = (char *)(uintptr_t)MB_CMDLINE_ADDR;
    if (c.size >= MB_CMDLINE_MAX)
        fatal("kernel command line is %u bytes, the limit is %u", c.size, MB_CMDLINE_MAX - 1);
    fwcfg_read_at(c.key, 0, dst, c.size);
    dst[c.size] = '\0';
    info("cmdline \"%s\"", dst);
    return MB_CMDLINE_ADDR;
}

static uint32_t load_module(uint32_t kernel_end, struct multiboot_module *mod)
{
    struct item m = find_item(FILE_INITRD, FW_CFG_INITRD_DATA, FW_CFG_INITRD_SIZE, "initrd");
    if (!m.size)
        return 0;
    uint32_t start = align_up32(kernel_end, 4096);
    check_range("module", start, m.size);
    fwcfg_read_at(m.key, 0, (void *)(uintptr_t)start, m.size);
    strlcpy((char *)(uintptr_t)MB_MOD_CMDLINE_ADDR, "initrd", 256);
    mod->mod_start = start;
    mod->mod_end = start + m.size;
    mod->cmdline = MB_MOD_CMDLINE_ADDR;
    mod->reserved = 0;
    info("module 0x%08x-0x%08x (%u bytes from fw_cfg %s)", start, start + m.size, m.size,
         m.name);
    return 1;
}

static void fill_memory(struct multiboot_info *mbi, uint32_t mmap_addr)
{
    uint32_t len = mmap_build(ram_info, (struct multiboot_mmap_entry *)(uintptr_t)mmap_addr,
                              MB_MMAP_MAX_BYTES);
    mbi->mem_lower = 0xa0000 / 1024;
    mbi->mem_upper = (ram_info->low_end - KERNEL_MIN_ADDR) / 1024;
    mbi->mmap_addr = mmap_addr;
    mbi->mmap_length = len;
    strlcpy((char *)(uintptr_t)MB_LOADER_NAME_ADDR, BIOS_NAME, 64);
    mbi->boot_loader_name = MB_LOADER_NAME_ADDR;
    mbi->flags |= MBI_FLAG_MEM | MBI_FLAG_MMAP | MBI_FLAG_LOADER_NAME;
    mmap_print((const void *)(uintptr_t)mmap_addr, len);
}

static void boot_raw(const struct item *k, struct boot_handoff *out)
{
    uint8_t *buf = (uint8_t *)(uintptr_t)BIOS_SCRATCH;
    uint32_t n = k->size < MB_SEARCH_LEN ? k->size : MB_SEARCH_LEN;
    fwcfg_read_at(k->key, 0, buf, n);
    const uint32_t *h;
    uint32_t hoff = find_header(buf, n, &h);
    uint32_t flags = h[1];
    if (flags & 0xffffu & ~MB_FLAGS_SUPPORTED_REQUIRED)
        fatal("kernel: Multiboot header requires unsupported features (flags 0x%08x)", flags);
    if (flags & MB_FLAG_VIDEO)
        info("kernel: video mode request ignored (no VBE here)");

    struct loaded img;
    if (flags & MB_FLAG_AOUT_KLUDGE)
        load_aout(k, h, hoff, n, &img);
    else
        load_elf(k, buf, n, &img);
    if (img.entry < img.lo || img.entry >= img.hi)
        fatal("kernel: entry 0x%08x outside the loaded image 0x%08x-0x%08x", img.entry, img.lo,
              img.hi);

    struct multiboot_info *mbi = (struct multiboot_info *)(uintptr_t)MB_INFO_ADDR;
    memset(mbi, 0, sizeof(*mbi));
    mbi->cmdline = load_cmdline();
    mbi->mods_addr = MB_MODS_ADDR;
    mbi->mods_count = load_module(img.hi, (struct multiboot_module *)(uintptr_t)MB_MODS_ADDR);
    mbi->flags = MBI_FLAG_CMDLINE | MBI_FLAG_MODS;
    fill_memory(mbi, MB_MMAP_ADDR);
    out->entry = img.entry;
    out->mbi = MB_INFO_ADDR;
}

/* QEMU's -kernel on a Multiboot image: hw/i386/multiboot.c has already
 * laid out the image (kernel, module list, command lines, modules) for
 * KERNEL_ADDR and the info block for INITRD_ADDR; its option ROM would add
 * the memory fields.  We do the option ROM's part. */
static void boot_qemu_multiboot(const struct item *k, struct boot_handoff *out)
{
    uint32_t addr = fwcfg_read32(FW_CFG_KERNEL_ADDR);
    uint32_t entry = fwcfg_read32(FW_CFG_KERNEL_ENTRY);
    uint32_t mbi_addr = fwcfg_read32(FW_CFG_INITRD_ADDR);
    uint32_t mbi_size = fwcfg_read32(FW_CFG_INITRD_SIZE);
    if (mbi_size != QEMU_MBI_SIZE || mbi_addr != MB_INFO_ADDR)
        fatal("kernel: unexpected QEMU Multiboot info (%u bytes at 0x%x)", mbi_size, mbi_addr);
    check_range("kernel image", addr, k->size);
    if (entry < addr || entry >= addr + k->size)
        fatal("kernel: entry 0x%08x outside the image 0x%08x-0x%08x", entry, addr,
              addr + k->size);
    fwcfg_read_at(k->key, 0, (void *)(uintptr_t)addr, k->size);
    struct multiboot_info *mbi = (struct multiboot_info *)(uintptr_t)mbi_addr;
    fwcfg_read_at(FW_CFG_INITRD_DATA, 0, mbi, QEMU_MBI_SIZE);
    info("kernel: QEMU-prepared Multiboot image 0x%08x-0x%08x, %u module(s)", addr,
         addr + k->size, mbi->mods_count);
    if (mbi->flags & MBI_FLAG_CMDLINE)
        info("cmdline \"%s\"", (const char *)(uintptr_t)mbi->cmdline);
    fill_memory(mbi, MB_MMAP_ADDR);
    out->entry = entry;
    out->mbi = mbi_addr;
}

void boot_load(const struct ram_layout *ram, struct boot_handoff *out)
{
    ram_info = ram;
    if (!fwcfg_present())
        fatal("no fw_cfg device (signature \"QEMU\" at selector 0x510): nothing to boot");
    struct item k = find_item(FILE_KERNEL, FW_CFG_KERNEL_DATA, FW_CFG_KERNEL_SIZE, "kernel");
    if (!k.size)
        fatal("no kernel: fw_cfg KERNEL_SIZE is 0 and there is no file %s", FILE_KERNEL);
    uint8_t magic[4];
    fwcfg_read_at(k.key, 0, magic, 4);
    bool elf = memcmp(magic, "\177ELF", 4) == 0;
    if (!elf && k.key == FW_CFG_KERNEL_DATA && fwcfg_read32(FW_CFG_KERNEL_ENTRY)) {
        boot_qemu_multiboot(&k, out);
    } else {
        info("kernel: %u bytes from fw_cfg %s (%s)", k.size, k.name,
             fwcfg_uses_dma() ? "DMA" : "port I/O");
        boot_raw(&k, out);
    }
    info("boot: entry 0x%08x, multiboot info 0x%08x", out->entry, out->mbi);
}

void boot_jump(const struct boot_handoff *h)
{
    __asm__ volatile("cli\n\t"
                     "cld\n\t"
                     "jmp *%%ecx"
                     :
                     : "a"(MB_BOOT_MAGIC), "b"(h->mbi), "c"(h->entry)
                     : "memory");
    __builtin_unreachable();
}
