#include "alloc.h"
#include "cpu.h"
#include "multiboot.h"
#include "string.h"

/* Every block starts with this header; the payload follows it, so payloads
 * are 16-byte aligned when blocks are. */
struct block {
    uint32_t size;  /* whole block including the header, multiple of 16 */
    uint32_t magic; /* MAGIC_FREE or MAGIC_USED */
    struct block *next; /* free list link (free blocks only) */
    uint32_t pad;
};

#define HDR ((uintptr_t)sizeof(struct block))
#define MIN_BLOCK (2 * HDR)
#define MAGIC_FREE 0xf4ee0b1cu
#define MAGIC_USED 0xa110ca7eu

static struct block *free_list;
static uintptr_t heap_lo, heap_hi;

extern char _end[]; /* end of the kernel image (linker script) */

static uintptr_t align_up(uintptr_t v, uintptr_t a)
{
    return (v + a - 1) & ~(a - 1);
}

void heap_init(uintptr_t start, uintptr_t end)
{
    start = align_up(start, 16);
    end &= ~(uintptr_t)15;
    free_list = NULL;
    heap_lo = heap_hi = 0;
    if (end <= start || end - start < MIN_BLOCK)
        return;
    heap_lo = start;
    heap_hi = end;
    free_list = (struct block *)start;
    free_list->size = (uint32_t)(end - start);
    free_list->magic = MAGIC_FREE;
    free_list->next = NULL;
}

size_t heap_init_from_multiboot(void)
{
    uintptr_t floor = (uintptr_t)_end;
    uintptr_t mb_end = mb_reserved_end();
    if (mb_end > floor)
        floor = mb_end;
    if (floor < 0x100000)
        floor = 0x100000;
    floor = align_up(floor, 4096);

    uint64_t best_lo = 0, best_hi = 0;
    for (const struct multiboot_mmap_entry *e = mb_mmap_next(NULL); e; e = mb_mmap_next(e)) {
        if (e->type != MMAP_AVAILABLE)
            continue;
        uint64_t lo = e->addr, hi = e->addr + e->len;
        if (hi > 0x100000000ull)
            hi = 0x100000000ull;
        if (lo < floor)
            lo = floor;
        if (hi > lo && hi - lo > best_hi - best_lo) {
            best_lo = lo;
            best_hi = hi;
        }
    }
    const struct multiboot_info *mbi = mb_info();
    if (best_hi == best_lo && mbi && (mbi->flags & MBI_FLAG_MEM)) {
        uint64_t hi = 0x100000ull + (uint64_t)mbi->mem_upper * 1024;
        if (hi > floor) {
            best_lo = floor;
            best_hi = hi;
        }
    }
    /* Keep the last byte below 4 GiB representable. */
    if (best_hi >= 0x100000000ull)
        best_hi = 0xfffff000ull;
    heap_init((uintptr_t)best_lo, (uintptr_t)best_hi);
    return heap_hi - heap_lo;
}

void heap_range(uintptr_t *start, uintptr_t *end)
{
    *start = heap_lo;
    *end = heap_hi;
}

void *memalign(size_t align, size_t n)
{
    if (align < 16)
        align = 16;
    if (align & (align - 1) || n > 0x7fffffffu)
        return NULL;
    uintptr_t need = align_up(n ? n : 1, 16) + HDR;
    struct block **link = &free_list;
    for (struct block *b = free_list; b; link = &b->next, b = b->next) {
        uintptr_t start = (uintptr_t)b, end = start + b->size;
        uintptr_t payload = align_up(start + HDR, align);
        /* A leading gap must be big enough to stay a free block. */
        if (payload - HDR != start && payload - HDR - start < MIN_BLOCK)
            payload = align_up(start + HDR + MIN_BLOCK, align);
        uintptr_t blk = payload - HDR;
        /* compared as distances: blk + need can wrap past 4 GiB on a heap
         * high in the address space */
        if (blk > end || need > end - blk)
            continue;
        /* Split off the tail if it can stand on its own. */
        uintptr_t blk_end = blk + need;
        if (end - blk_end < MIN_BLOCK)
            blk_end = end;
        else {
            struct block *tail = (struct block *)blk_end;
            tail->size = (uint32_t)(end - blk_end);
            tail->magic = MAGIC_FREE;
            tail->next = b->next;
            b->next = tail;
        }
        if (blk != start) {
            b->size = (uint32_t)(blk - start); /* leading part stays free */
        } else {
            *link = b->next;
        }
        struct block *used = (struct block *)blk;
        used->size = (uint32_t)(blk_end - blk);
        used->magic = MAGIC_USED;
        used->next = NULL;
        return (void *)payload;
    }
    return NULL;
}

void *malloc(size_t n)
{
    return memalign(16, n);
}

void *calloc(size_t n, size_t size)
{
    if (size && n > 0xffffffffu / size)
        return NULL;
    void *p = malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void free(void *p)
{
    if (!p)
        return;
    struct block *b = (struct block *)((uintptr_t)p - HDR);
    if ((uintptr_t)b < heap_lo || (uintptr_t)p >= heap_hi || b->magic != MAGIC_USED)
        panic("free(%p): not a live heap block", p);
    b->magic = MAGIC_FREE;
    struct block *prev = NULL, *cur = free_list;
    while (cur && cur < b) {
        prev = cur;
        cur = cur->next;
    }
    b->next = cur;
    if (prev)
        prev->next = b;
    else
        free_list = b;
    if (cur && (uintptr_t)b + b->size == (uintptr_t)cur) {
        b->size += cur->size;
        b->next = cur->next;
    }
    if (prev && (uintptr_t)prev + prev->size == (uintptr_t)b) {
        prev->size += b->size;
        prev->next = b->next;
    }
}

size_t heap_free_bytes(void)
{
    size_t total = 0;
    for (struct block *b = free_list; b; b = b->next)
        total += b->size - HDR;
    return total;
}
