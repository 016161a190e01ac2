#include "paging.h"
#include "alloc.h"
#include "cpu.h"
#include "string.h"

static uint32_t *page_dir;

static uint32_t *table_for(uint32_t va, bool create)
{
    uint32_t pde = page_dir[va >> 22];
    if (pde & PTE_PRESENT)
        return (uint32_t *)(uintptr_t)(pde & PTE_ADDR_MASK);
    if (!create)
        return 0;
    uint32_t *pt = memalign(4096, 4096);
    if (!pt)
        return 0;
    memset(pt, 0, 4096);
    page_dir[va >> 22] = (uint32_t)(uintptr_t)pt | PTE_PRESENT | PTE_WRITE;
    return pt;
}

bool paging_init_identity(uint32_t limit)
{
    page_dir = memalign(4096, 4096);
    if (!page_dir)
        return false;
    memset(page_dir, 0, 4096);
    return paging_map_range(0, limit, PTE_WRITE);
}

bool paging_map_range(uint32_t addr, uint32_t size, uint32_t flags)
{
    if (!page_dir)
        return false;
    uint64_t end = ((uint64_t)addr + size + 0xfff) & ~0xfffull;
    for (uint64_t a = addr & PTE_ADDR_MASK; a < end; a += 4096) {
        uint32_t *pt = table_for((uint32_t)a, true);
        if (!pt)
            return false;
        pt[(a >> 12) & 1023] = (uint32_t)a | flags | PTE_PRESENT;
    }
    return true;
}

void paging_enable(void)
{
    write_cr3((uint32_t)(uintptr_t)page_dir);
    write_cr0(read_cr0() | CR0_PG | CR0_WP);
}

void paging_disable(void)
{
    write_cr0(read_cr0() & ~CR0_PG);
}

uint32_t *paging_pte(uint32_t va)
{
    if (!page_dir)
        return 0;
    uint32_t *pt = table_for(va, false);
    return pt ? &pt[(va >> 12) & 1023] : 0;
}

bool paging_map_page(uint32_t va, uint32_t pa, uint32_t flags)
{
    uint32_t *pte = paging_pte(va);
    if (!pte)
        return false;
    *pte = (pa & PTE_ADDR_MASK) | flags | PTE_PRESENT;
    invlpg(va);
    return true;
}

bool paging_unmap_page(uint32_t va)
{
    uint32_t *pte = paging_pte(va);
    if (!pte)
        return false;
    *pte = 0;
    invlpg(va);
    return true;
}
