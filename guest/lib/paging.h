/* 32-bit paging with 4 KiB pages (no PSE, no PAE): an identity map of the
 * low part of the address space, and single-page changes on top of it.
 * Page tables come from the heap.  Everything outside the mapped range
 * faults while paging is on, so map every MMIO range a test touches. */
#ifndef LIB_PAGING_H
#define LIB_PAGING_H

#include <stdbool.h>
#include <stdint.h>

#define PTE_PRESENT 0x001u
#define PTE_WRITE 0x002u
#define PTE_USER 0x004u
#define PTE_PCD 0x010u /* cache disable: for MMIO */
#define PTE_ADDR_MASK 0xfffff000u

/* Build a page directory identity-mapping [0, limit) (rounded up to 4 MiB)
 * present + writable, without enabling paging.  Returns false when the heap
 * cannot hold the tables.  Calling it again rebuilds from scratch. */
bool paging_init_identity(uint32_t limit);
/* Identity-map [addr, addr + size) too (e.g. a PCI BAR), with `flags`. */
bool paging_map_range(uint32_t addr, uint32_t size, uint32_t flags);
/* Load CR3 and set CR0.PG (and CR0.WP). */
void paging_enable(void);
/* Clear CR0.PG: back to flat physical addressing. */
void paging_disable(void);
/* The page-table entry for virtual address va, or NULL when its 4 MiB
 * region has no page table. */
uint32_t *paging_pte(uint32_t va);
/* Set the PTE of va to `pa | flags` and flush its TLB entry. */
bool paging_map_page(uint32_t va, uint32_t pa, uint32_t flags);
/* Make va not-present (flushing its TLB entry); the next access faults. */
bool paging_unmap_page(uint32_t va);

#endif
