/* hello: the first guest.  It checks the platform the toolkit relies on and
 * reports in TAP:
 *   - the Multiboot hand-off (info block, memory map) and the heap;
 *   - the PCI devices with their BARs and IRQ lines, in the stable report
 *     format of pci_print() (compared line by line between machines);
 *   - PIT channel 0 at 1000 Hz, its interrupt rate measured against PIT
 *     channel 2 used as an independent stopwatch;
 *   - int3, #GP and #PF taken by its own handlers and returned from.
 * It exits through the debug port: 0 when every test passed, 1 otherwise.
 *
 * Command-line options (key=value): timer_hz (1000), timer_ms (length of
 * the measurement, 250), timer_tolerance (percent the rate may be above
 * timer_hz, 10) and timer_loss (percent it may be below, 35).  The two
 * differ because an emulator on a busy host (QEMU's TCG as much as
 * spicevm) delivers a late timer period once, not once per period missed:
 * lost ticks say how busy the host was, a rate above the programmed one
 * says the divisor is wrong.
 */
#include "lib/alloc.h"
#include "lib/console.h"
#include "lib/cpu.h"
#include "lib/idt.h"
#include "lib/irq.h"
#include "lib/kernel.h"
#include "lib/multiboot.h"
#include "lib/paging.h"
#include "lib/pci.h"
#include "lib/pit.h"
#include "lib/tap.h"

#define QXL_VENDOR 0x1b36
#define QXL_DEVICE 0x0100
#define BAD_SELECTOR 0x0ff8 /* GDT index 511: far beyond our 3-entry GDT */

static void check_boot_info(void)
{
    const struct multiboot_info *mbi = mb_info();
    printf("hello: loader \"%s\" cmdline \"%s\"\n", mb_loader_name(), mb_cmdline());
    ok(mbi != 0, "Multiboot magic and info block (flags 0x%x)", mbi ? mbi->flags : 0);

    uint64_t above_1m = 0;
    for (const struct multiboot_mmap_entry *e = mb_mmap_next(0); e; e = mb_mmap_next(e)) {
        printf("mmap 0x%010llx-0x%010llx %s\n", e->addr, e->addr + e->len - 1,
               e->type == MMAP_AVAILABLE ? "available" : "reserved");
        if (e->type == MMAP_AVAILABLE && e->addr >= 0x100000)
            above_1m += e->len;
    }
    for (uint32_t i = 0; i < mb_module_count(); i++) {
        const struct multiboot_module *m = mb_module(i);
        const uint8_t *data = (const uint8_t *)(uintptr_t)m->mod_start;
        uint32_t len = m->mod_end - m->mod_start;
        printf("module %u 0x%08x-0x%08x \"%s\" first bytes", i, m->mod_start, m->mod_end,
               m->cmdline ? (const char *)(uintptr_t)m->cmdline : "");
        for (uint32_t j = 0; j < len && j < 16; j++)
            printf(" %02x", data[j]);
        printf("\n");
    }
    ok(above_1m >= 0x100000, "memory map lists %llu KiB of RAM above 1 MiB (mem_upper %u KiB)",
       above_1m >> 10, mbi ? mbi->mem_upper : 0);
}

static void check_heap(void)
{
    size_t before = heap_free_bytes();
    void *a = malloc(100);
    void *b = memalign(4096, 8192);
    void *c = calloc(16, 16);
    bool shape = a && b && c && ((uintptr_t)b & 4095) == 0 && ((uintptr_t)a & 15) == 0 &&
                 (uintptr_t)a >= (uintptr_t)_end;
    free(b);
    free(a);
    free(c);
    ok(shape && heap_free_bytes() == before, "heap: malloc/memalign/calloc/free (%u KiB free)",
       (unsigned)(before >> 10));
}

static void check_pci(void)
{
    int n = pci_scan();
    for (int i = 0; i < n; i++)
        pci_print(pci_get(i), "");

    const struct pci_dev *host = pci_find(0x8086, 0x1237, 0);
    ok(host && host->bdf == PCI_BDF(0, 0, 0), "i440FX host bridge 8086:1237 at 00:00.0");
    const struct pci_dev *isa = pci_find(0x8086, 0x7000, 0);
    ok(isa && isa->bdf == PCI_BDF(0, 1, 0), "PIIX3 ISA bridge 8086:7000 at 00:01.0");

    const struct pci_dev *qxl = pci_find(QXL_VENDOR, QXL_DEVICE, 0);
    if (!qxl) {
        skip("no QXL device 1b36:0100");
        skip("no QXL device 1b36:0100");
        return;
    }
    const struct pci_bar *b = qxl->bar;
    bool bars = b[0].type == PCI_BAR_MEM && b[0].addr && b[0].size >= 0x1000 &&
                b[1].type == PCI_BAR_MEM && b[1].addr && b[1].size >= 0x1000 &&
                b[2].type == PCI_BAR_MEM && b[2].addr && b[2].size >= 0x1000 &&
                b[3].type == PCI_BAR_IO && b[3].addr && b[3].size >= 0x20;
    ok(bars, "QXL %02x:%02x.%x has BAR0-2 memory and BAR3 I/O assigned", PCI_BUS(qxl->bdf),
       PCI_SLOT(qxl->bdf), PCI_FUNC(qxl->bdf));
    ok(qxl->irq_pin >= 1 && qxl->irq_pin <= 4 && qxl->irq_line >= 1 && qxl->irq_line <= 15,
       "QXL interrupt pin %u routed to IRQ %u", qxl->irq_pin, qxl->irq_line);
}

static void check_timer(void)
{
    uint32_t hz = (uint32_t)mb_cmdline_int("timer_hz", 1000);
    uint32_t window_ms = (uint32_t)mb_cmdline_int("timer_ms", 250);
    uint32_t tolerance = (uint32_t)mb_cmdline_int("timer_tolerance", 10);
    uint32_t loss = (uint32_t)mb_cmdline_int("timer_loss", 35);
    if (window_ms == 0)
        window_ms = 1;
    uint32_t div = pit_init(hz);

    /* Start on a tick boundary so the count is not off by one edge. */
    uint64_t t = pit_ticks();
    for (int i = 0; i < 1000 && pit_ticks() == t; i++)
        cpu_idle();
    ok(pit_ticks() > t, "timer interrupt arrives after cpu_idle()");

    /* Count ticks between two tick wake-ups while PIT channel 2 measures
     * the time; the CPU halts in between, so the timer is never starved
     * by a polling loop. */
    struct pit_stopwatch sw;
    cpu_idle(); /* start on a tick boundary */
    stopwatch_start(&sw);
    uint64_t t0 = pit_ticks();
    uint64_t window = (uint64_t)window_ms * PIT_INPUT_HZ / 1000;
    while (stopwatch_update(&sw) < window)
        cpu_idle();
    uint64_t ticks = pit_ticks() - t0;
    cli();
    pit_stop();
    uint32_t elapsed_us = (uint32_t)(sw.clocks * 1000000 / PIT_INPUT_HZ);
    uint32_t rate = elapsed_us ? (uint32_t)(ticks * 1000000 / elapsed_us) : 0;
    printf("timer: programmed %u Hz (divisor %u), %llu ticks in %u us of PIT channel 2\n", hz,
           div, ticks, elapsed_us);
    bool too_fast = (uint64_t)rate * 100 > (uint64_t)hz * (100 + tolerance);
    bool too_slow = (uint64_t)rate * 100 < (uint64_t)hz * (100 - (loss < 100 ? loss : 100));
    ok(!too_fast && !too_slow, "timer rate %u Hz: at most %u%% above and %u%% below %u Hz",
       rate, tolerance, loss, hz);
}

/* Faulting instructions with labels before and after them, so the
 * handlers can check EIP and resume after the fault. */
extern char int3_after[], gp_insn[], gp_after[];
void do_int3(void);
void do_gp(void);
__asm__(".text\n"
        ".globl do_int3\n"
        "do_int3:\n"
        "    int3\n"
        ".globl int3_after\n"
        "int3_after:\n"
        "    ret\n"
        ".globl do_gp\n"
        "do_gp:\n"
        "    movw $0x0ff8, %ax\n"
        ".globl gp_insn\n"
        "gp_insn:\n"
        "    movw %ax, %fs\n"
        ".globl gp_after\n"
        "gp_after:\n"
        "    ret\n");

static volatile uint32_t trap_hits, trap_eip, trap_err, trap_cr2;
static uint32_t pf_page;

static void bp_handler(struct trap_frame *f)
{
    trap_hits++;
    trap_eip = f->eip;
}

static void gp_handler(struct trap_frame *f)
{
    trap_hits++;
    trap_eip = f->eip;
    trap_err = f->error_code;
    if (f->eip != (uint32_t)(uintptr_t)gp_insn)
        trap_default(f);
    f->eip = (uint32_t)(uintptr_t)gp_after; /* skip the faulting mov */
}

static void pf_handler(struct trap_frame *f)
{
    trap_hits++;
    trap_eip = f->eip;
    trap_err = f->error_code;
    trap_cr2 = read_cr2();
    if ((trap_cr2 & ~0xfffu) != pf_page)
        trap_default(f);
    /* Map the page and return: the faulting access runs again. */
    paging_map_page(pf_page, pf_page, PTE_WRITE);
}

static void check_int3(void)
{
    trap_hits = 0;
    trap_set_handler(VEC_BP, bp_handler);
    do_int3();
    trap_set_handler(VEC_BP, 0);
    printf("int3: handler saw eip=0x%08x\n", trap_eip);
    ok(trap_hits == 1 && trap_eip == (uint32_t)(uintptr_t)int3_after,
       "int3 handled once, eip after the int3, returned");
}

static void check_gp(void)
{
    trap_hits = 0;
    trap_set_handler(VEC_GP, gp_handler);
    do_gp();
    trap_set_handler(VEC_GP, 0);
    printf("#GP: error code 0x%x at eip=0x%08x\n", trap_err, trap_eip);
    ok(trap_hits == 1 && trap_err == BAD_SELECTOR,
       "#GP from loading selector 0x%x: error code 0x%x, skipped and returned", BAD_SELECTOR,
       trap_err);
}

static void check_pf(void)
{
    uintptr_t heap_lo, heap_hi;
    heap_range(&heap_lo, &heap_hi);
    volatile uint32_t *page = memalign(4096, 4096);
    if (!page || !paging_init_identity((uint32_t)heap_hi)) {
        ok(false, "#PF: paging set-up (no heap memory)");
        ok(false, "#PF: read fault");
        return;
    }
    pf_page = (uint32_t)(uintptr_t)page;
    for (int i = 0; i < 1024; i++)
        page[i] = 0;
    paging_unmap_page(pf_page);
    trap_set_handler(VEC_PF, pf_handler);
    paging_enable();

    trap_hits = 0;
    page[1] = 0xc0ffee42; /* not present: faults, handler maps, retried */
    uint32_t hits = trap_hits, err = trap_err, cr2 = trap_cr2;
    uint32_t value = page[1];
    printf("#PF: write error code 0x%x cr2=0x%08x eip=0x%08x\n", err, cr2, trap_eip);
    ok(hits == 1 && err == PF_ERR_WRITE && cr2 == pf_page + 4 && value == 0xc0ffee42,
       "#PF on write to a not-present page: error code 0x%x, cr2 0x%08x, mapped and retried",
       err, cr2);

    paging_unmap_page(pf_page);
    trap_hits = 0;
    value = page[2];
    printf("#PF: read error code 0x%x cr2=0x%08x\n", trap_err, trap_cr2);
    ok(trap_hits == 1 && trap_err == 0 && trap_cr2 == pf_page + 8 && value == 0,
       "#PF on read of a not-present page: error code 0x%x, cr2 0x%08x", trap_err, trap_cr2);

    paging_disable();
    trap_set_handler(VEC_PF, 0);
    free((void *)page);
}

int main(void)
{
    printf("hello: spicevm guest toolkit\n");
    plan(14);
    check_boot_info();
    check_heap();
    check_pci();
    check_timer();
    check_int3();
    check_gp();
    check_pf();
    ok(irq_unhandled_count() == 0, "no interrupts without a handler (%u spurious)",
       irq_spurious_count());
    tap_exit();
}
