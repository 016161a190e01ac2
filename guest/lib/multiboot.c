#include "multiboot.h"
#include "string.h"

static const struct multiboot_info *info;

bool mb_init(uint32_t magic, uint32_t mbi_addr)
{
    info = (magic == MULTIBOOT_BOOTLOADER_MAGIC && mbi_addr)
               ? (const struct multiboot_info *)(uintptr_t)mbi_addr
               : NULL;
    return info != NULL;
}

const struct multiboot_info *mb_info(void)
{
    return info;
}

const char *mb_cmdline(void)
{
    if (info && (info->flags & MBI_FLAG_CMDLINE) && info->cmdline)
        return (const char *)(uintptr_t)info->cmdline;
    return "";
}

const char *mb_loader_name(void)
{
    if (info && (info->flags & MBI_FLAG_LOADER_NAME) && info->boot_loader_name)
        return (const char *)(uintptr_t)info->boot_loader_name;
    return "";
}

bool mb_cmdline_opt(const char *key, char *val, size_t len)
{
    size_t klen = strlen(key);
    const char *p = mb_cmdline();
    while (*p) {
        while (*p == ' ')
            p++;
        const char *word = p;
        while (*p && *p != ' ')
            p++;
        size_t wlen = (size_t)(p - word);
        if (wlen >= klen && strncmp(word, key, klen) == 0 &&
            (wlen == klen || word[klen] == '=')) {
            if (val && len) {
                size_t vlen = wlen > klen ? wlen - klen - 1 : 0;
                if (vlen >= len)
                    vlen = len - 1;
                memcpy(val, word + klen + 1, vlen);
                val[vlen] = '\0';
            }
            return true;
        }
    }
    return false;
}

long mb_cmdline_int(const char *key, long fallback)
{
    char buf[24];
    if (!mb_cmdline_opt(key, buf, sizeof(buf)) || !buf[0])
        return fallback;
    const char *s = buf;
    bool neg = *s == '-';
    if (neg)
        s++;
    char *end;
    long v = (long)strtoul(s, &end, 0);
    if (*end)
        return fallback;
    return neg ? -v : v;
}

const struct multiboot_mmap_entry *mb_mmap_next(const struct multiboot_mmap_entry *prev)
{
    if (!info || !(info->flags & MBI_FLAG_MMAP))
        return NULL;
    uintptr_t start = info->mmap_addr, end = start + info->mmap_length;
    uintptr_t p = prev ? (uintptr_t)prev + prev->size + 4 : start;
    if (p + sizeof(struct multiboot_mmap_entry) > end)
        return NULL;
    return (const struct multiboot_mmap_entry *)p;
}

uint32_t mb_module_count(void)
{
    return (info && (info->flags & MBI_FLAG_MODS)) ? info->mods_count : 0;
}

const struct multiboot_module *mb_module(uint32_t i)
{
    if (i >= mb_module_count())
        return NULL;
    return (const struct multiboot_module *)(uintptr_t)info->mods_addr + i;
}

static uintptr_t max_ptr(uintptr_t a, uintptr_t b)
{
    return a > b ? a : b;
}

uintptr_t mb_reserved_end(void)
{
    if (!info)
        return 0;
    uintptr_t end = (uintptr_t)info + sizeof(*info);
    const char *cmd = mb_cmdline();
    if (*cmd)
        end = max_ptr(end, (uintptr_t)cmd + strlen(cmd) + 1);
    const char *name = mb_loader_name();
    if (*name)
        end = max_ptr(end, (uintptr_t)name + strlen(name) + 1);
    if (info->flags & MBI_FLAG_MMAP)
        end = max_ptr(end, info->mmap_addr + info->mmap_length);
    for (uint32_t i = 0; i < mb_module_count(); i++) {
        const struct multiboot_module *m = mb_module(i);
        end = max_ptr(end, (uintptr_t)(m + 1));
        end = max_ptr(end, m->mod_end);
        if (m->cmdline) {
            const char *s = (const char *)(uintptr_t)m->cmdline;
            end = max_ptr(end, (uintptr_t)s + strlen(s) + 1);
        }
    }
    return end;
}
