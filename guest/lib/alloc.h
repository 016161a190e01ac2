/* A small heap: first-fit over an address-ordered free list, with
 * coalescing on free.  Blocks are 16-byte aligned; memalign() gives any
 * power-of-two alignment (page-aligned buffers for devices).  Not
 * interrupt-safe: do not allocate from IRQ handlers.
 */
#ifndef LIB_ALLOC_H
#define LIB_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Use [start, end) as the heap (replaces any previous heap). */
void heap_init(uintptr_t start, uintptr_t end);
/* Place the heap in the largest available RAM range of the Multiboot
 * memory map below 4 GiB that lies above the kernel image, the modules
 * and the boot information (falls back to mem_upper).  Returns the heap
 * size in bytes (0 when no memory was found).  Called by the start-up
 * code. */
size_t heap_init_from_multiboot(void);
/* n bytes, 16-byte aligned, or NULL. */
void *malloc(size_t n);
/* n * size zeroed bytes, or NULL (also on overflow). */
void *calloc(size_t n, size_t size);
/* n bytes aligned to `align` (a power of two), or NULL. */
void *memalign(size_t align, size_t n);
/* Return a block from malloc/calloc/memalign (NULL is ignored).  A pointer
 * that is not a live block panics. */
void free(void *p);
/* Bytes currently free (sum of free blocks, headers excluded). */
size_t heap_free_bytes(void);
/* The heap's range as given to heap_init (0, 0 before). */
void heap_range(uintptr_t *start, uintptr_t *end);

#endif
