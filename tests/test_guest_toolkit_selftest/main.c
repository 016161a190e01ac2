/* Self-test of the guest toolkit (guest/lib), built by
 * tests/test_guest_toolkit.py as a guest of a temporary copy of the tree.
 *
 * Command line: "mode=<m>" picks what to do:
 *   (none)  run the unit tests below and exit through tap_exit();
 *   fail    report one failing test (exit status 3 under QEMU);
 *   panic   call panic() (exit status 255);
 *   fault   touch an unmapped page with paging on and no handler: the
 *           default handler reports #PF with CR2 and exits with 255.
 */
#include "lib/alloc.h"
#include "lib/console.h"
#include "lib/cpu.h"
#include "lib/idt.h"
#include "lib/irq.h"
#include "lib/multiboot.h"
#include "lib/paging.h"
#include "lib/pci.h"
#include "lib/pic.h"
#include "lib/pit.h"
#include "lib/string.h"
#include "lib/tap.h"

#include <stdint.h>

static bool fmt_is(const char *want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fmt_is(const char *want, const char *fmt, ...)
{
    char buf[96];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    bool good = strcmp(buf, want) == 0 && n == (int)strlen(want);
    return ok(good, "format \"%s\" -> \"%s\" (want \"%s\")", fmt, buf, want);
}

static void test_format(void)
{
    fmt_is("-42 42 4294967254", "%d %u %u", -42, 42u, (unsigned)-42);
    fmt_is("ff FF 000000ff 0xff", "%x %X %08x %#x", 255u, 255u, 255u, 255u);
    fmt_is("[  abc][abc  ][ab]", "[%5s][%-5s][%.2s]", "abc", "abc", "abc");
    fmt_is("-0042 +7  7 x %", "%05d %+d % d %c %%", -42, 7, 7, 'x');
    fmt_is("-9223372036854775808 18446744073709551615", "%lld %llu", INT64_MIN, UINT64_MAX);
    fmt_is("123456789abcdef0 17", "%llx %zu", 0x123456789abcdef0ull, (size_t)17);
    fmt_is("0x00100000 (null)", "%p %s", (void *)0x100000, (const char *)0);
    fmt_is("[   -5][-5  ][007]", "[%*d][%-*d][%.3d]", 5, -5, 4, -5, 7);
    char small[8];
    int n = snprintf(small, sizeof(small), "%s", "truncated text");
    ok(n == 14 && strcmp(small, "truncat") == 0, "snprintf truncates and returns the full length");
}

static void test_strings(void)
{
    char buf[16] = "abcdefgh";
    memmove(buf + 2, buf, 6);
    bool up = memcmp(buf, "ababcdef", 8) == 0;
    memmove(buf, buf + 2, 6);
    ok(up && memcmp(buf, "abcdefef", 8) == 0, "memmove handles overlap both ways");
    char dst[4];
    ok(strlcpy(dst, "hello", sizeof(dst)) == 5 && strcmp(dst, "hel") == 0,
       "strlcpy truncates and returns strlen(src)");
    char *end;
    ok(strtoul("0x1F", &end, 0) == 31 && strtoul("017", 0, 0) == 15 && strtoul("99z", &end, 10) == 99 &&
           *end == 'z',
       "strtoul: auto base and end pointer");
    ok(strcmp("abc", "abd") < 0 && strncmp("abcx", "abcy", 3) == 0 && strchr("a=b", '=')[1] == 'b' &&
           strchr("ab", 0) != 0 && strchr("ab", 'z') == 0,
       "strcmp, strncmp, strchr");
    uint8_t block[64];
    memset(block, 0xa5, sizeof(block));
    memset(block + 8, 0, 8);
    ok(block[7] == 0xa5 && block[8] == 0 && block[15] == 0 && block[16] == 0xa5,
       "memset stays inside its range");
}

static void test_heap(void)
{
    size_t before = heap_free_bytes();
    enum { N = 64 };
    uint8_t *p[N];
    size_t sz[N];
    uint32_t seed = 12345;
    bool good = true;
    for (int round = 0; round < 4 && good; round++) {
        for (int i = 0; i < N; i++) {
            seed = seed * 1103515245u + 12345u;
            sz[i] = 1 + (seed >> 16) % 3000;
            p[i] = (i & 3) == 3 ? memalign(4096, sz[i]) : malloc(sz[i]);
            if (!p[i] || ((uintptr_t)p[i] & ((i & 3) == 3 ? 4095 : 15))) {
                good = false;
                break;
            }
            memset(p[i], i, sz[i]);
        }
        for (int i = 0; good && i < N; i++)
            for (size_t j = 0; j < sz[i]; j++)
                if (p[i][j] != (uint8_t)i) {
                    good = false; /* two blocks overlap */
                    break;
                }
        for (int i = round & 1; i < N; i += 2)
            free(p[i]);
        for (int i = !(round & 1); i < N; i += 2)
            free(p[i]);
    }
    ok(good, "heap blocks are aligned and never overlap");
    ok(heap_free_bytes() == before, "freeing everything coalesces back to %u bytes",
       (unsigned)before);
    void *big = memalign(65536, 100);
    ok(big && ((uintptr_t)big & 0xffff) == 0, "memalign(64 KiB)");
    free(big);
    ok(malloc(0x7fffffff) == 0 && calloc(0x10000, 0x10001) == 0, "impossible sizes give NULL");
}

static void test_cmdline(void)
{
    char v[16];
    ok(mb_cmdline_opt("alpha", v, sizeof(v)) && v[0] == 0, "bare word on the command line");
    ok(mb_cmdline_opt("beta", v, sizeof(v)) && strcmp(v, "two") == 0, "key=value lookup");
    ok(mb_cmdline_int("gamma", -1) == 16 && mb_cmdline_int("delta", -1) == -1 &&
           !mb_cmdline_opt("alph", 0, 0),
       "integers, absent keys and prefixes");
}

static unsigned shared_a, shared_b;
static void count_a(unsigned irq, void *ctx)
{
    (void)irq;
    (*(unsigned *)ctx)++;
}

static void test_irq(void)
{
    pit_init(1000);
    ok(irq_register(0, count_a, &shared_a) == 0 && irq_register(0, count_a, &shared_b) == 0,
       "two handlers share IRQ 0");
    ok(!(pic_get_mask() & 1), "IRQ 0 is unmasked");
    pit_sleep_ms(20);
    cli();
    ok(shared_a >= 10 && shared_b >= 10, "both shared handlers ran (%u, %u)", shared_a,
       shared_b);
    irq_unregister(0, count_a, &shared_b);
    unsigned b_before = shared_b;
    pit_sleep_ms(10);
    cli();
    ok(shared_b == b_before && shared_a > 20, "an unregistered handler is no longer called");
    irq_unregister(0, count_a, &shared_a);
    pit_stop();
    ok(pic_get_mask() & 1, "the line is masked when the last handler goes");
    ok(irq_register(16, count_a, 0) == -1, "IRQ numbers above 15 are refused");
}

static void test_delay(void)
{
    /* udelay() is timed by the channel 2 stopwatch (it must stay below
     * the 54 ms wrap).  pit_delay_us() uses channel 2 itself, so it is timed
     * by IRQ 0 ticks; QEMU drops ticks while a vCPU polls a port without
     * pause, hence the wide lower bound.  A loaded host skews the spin
     * calibration, hence the wide udelay() bounds. */
    uint32_t loops = delay_calibrate();
    struct pit_stopwatch sw;
    stopwatch_start(&sw);
    udelay(10000);
    uint64_t us = stopwatch_update(&sw) * 1000000 / PIT_INPUT_HZ;
    pit_init(1000);
    sti();
    uint64_t t0 = pit_ticks();
    pit_delay_us(30000);
    uint64_t ticks = pit_ticks() - t0;
    cli();
    pit_stop();
    diag("delay: %u loops/ms; udelay(10000) took %llu us, pit_delay_us(30000) %llu ticks",
         loops, us, ticks);
    ok(loops > 0 && us >= 3000 && us <= 40000, "udelay(10 ms) takes about 10 ms");
    ok(ticks >= 10 && ticks <= 32, "pit_delay_us(30 ms) waits about 30 ms");
}

extern char ud_insn[], de_insn[], de_after[];
void do_ud(void);
int do_de(int zero);
__asm__(".text\n"
        ".globl do_ud\n"
        "do_ud:\n"
        ".globl ud_insn\n"
        "ud_insn: ud2\n"
        "    ret\n"
        ".globl do_de\n"
        "do_de:\n"
        "    movl $7, %eax\n"
        "    xorl %edx, %edx\n"
        "    movl 4(%esp), %ecx\n"
        ".globl de_insn\n"
        "de_insn: divl %ecx\n"
        ".globl de_after\n"
        "de_after: ret\n");

static volatile uint32_t seen_vector, seen_eip;
static void skip2(struct trap_frame *f)
{
    seen_vector = f->vector;
    seen_eip = f->eip;
    f->eip += 2; /* ud2 is two bytes */
}
static void resume_de(struct trap_frame *f)
{
    seen_vector = f->vector;
    seen_eip = f->eip;
    f->eip = (uint32_t)(uintptr_t)de_after;
    f->eax = 0xdead; /* what the division "returns" */
}

static void test_traps(void)
{
    ok(trap_set_handler(VEC_UD, skip2) == 0 && trap_set_handler(VEC_UD, skip2) == skip2,
       "trap_set_handler returns the previous handler");
    do_ud();
    ok(seen_vector == VEC_UD && seen_eip == (uint32_t)(uintptr_t)ud_insn,
       "#UD handler saw the faulting EIP and skipped the instruction");
    trap_set_handler(VEC_UD, 0);
    trap_set_handler(VEC_DE, resume_de);
    int r = do_de(0);
    trap_set_handler(VEC_DE, 0);
    ok(seen_vector == VEC_DE && seen_eip == (uint32_t)(uintptr_t)de_insn && r == 0xdead,
       "#DE handler changed EIP and EAX in the frame");
}

static unsigned sink_chars;
static void sink(char c)
{
    (void)c;
    sink_chars++;
}

static void test_console_and_pci(void)
{
    console_add_sink(sink);
    unsigned before = sink_chars;
    printf("sink check\n");
    ok(sink_chars - before == 11, "console sinks see every character");
    int n = pci_scan();
    const struct pci_dev *vga = pci_find_class(0x030000, 0);
    ok(n >= 3 && vga && vga->vendor == 0x1b36, "pci_find_class finds the QXL display");
    ok(pci_read16(vga->bdf, PCI_VENDOR_ID) == 0x1b36 && pci_read8(vga->bdf, PCI_CLASS_PROG + 2) == 3,
       "byte and word configuration reads");
}

static void test_paging(void)
{
    uintptr_t lo, hi;
    heap_range(&lo, &hi);
    bool built = paging_init_identity((uint32_t)hi);
    uint32_t *pte = paging_pte(0x100000);
    ok(built && pte && (*pte & PTE_ADDR_MASK) == 0x100000 && (*pte & PTE_PRESENT),
       "identity map covers the kernel");
    ok(paging_pte(0xf0000000) == 0 && paging_map_range(0xf0000000, 0x2000, PTE_WRITE) &&
           paging_pte(0xf0001000) != 0,
       "paging_map_range adds page tables for MMIO");
}

static void fault(void)
{
    uintptr_t lo, hi;
    heap_range(&lo, &hi);
    paging_init_identity((uint32_t)hi);
    paging_enable();
    *(volatile uint32_t *)0xe0001234 = 1; /* not mapped: #PF, no handler */
}

int main(void)
{
    char mode[16] = "";
    mb_cmdline_opt("mode", mode, sizeof(mode));
    if (strcmp(mode, "fail") == 0) {
        plan(2);
        ok(true, "a passing test");
        ok(false, "a failing test");
        tap_exit();
    }
    if (strcmp(mode, "panic") == 0)
        panic("selftest asked for a panic (%d)", 42);
    if (strcmp(mode, "fault") == 0)
        fault();

    plan(37);
    test_format();
    test_strings();
    test_heap();
    test_cmdline();
    test_irq();
    test_delay();
    test_traps();
    test_console_and_pci();
    test_paging();
    return tap_summary();
}
