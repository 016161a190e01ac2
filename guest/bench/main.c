/* bench: fixed guest work for comparing CPU emulators (tools/bench_cpu.py).
 *
 * Command line (key=value), one mode per run:
 *   mode=crc   (default) CRC-32 (table driven, reflected 0xEDB88320) over a
 *              buffer of size_kib KiB, `rounds` times, each round seeded with
 *              the previous CRC.  Prints the result so runs can be checked
 *              against each other, then exits.
 *   mode=io    `rounds` x 1000 byte reads of an unclaimed I/O port (0x80 is
 *              the POST port: nobody answers reads): the cost of a trip
 *              from guest code to the machine's port dispatch and back.
 *   mode=idle  the timer at hz (default 100) and `cpu_idle()` for ms
 *              milliseconds (default 10000), then exit: the host cost of a
 *              guest that sits in hlt like an idle OS.
 *   mode=echo  IRQ `irq` (default 5) unmasked; its handler writes the
 *              interrupt count to port 0xe0.  Halts (spin=0) or spins
 *              (spin=1) until the count reaches `count` (default 1000):
 *              the host measures injection latency from outside.
 * Every mode ends with qemu_exit(0) (status 1).
 */
#include "lib/console.h"
#include "lib/cpu.h"
#include "lib/io.h"
#include "lib/irq.h"
#include "lib/multiboot.h"
#include "lib/pit.h"

#define ECHO_PORT 0xe0

static uint32_t crc_table[256];
static uint8_t buffer[1024 * 1024];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32(uint32_t crc, const uint8_t *p, uint32_t len)
{
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static int bench_crc(uint32_t rounds, uint32_t size)
{
    uint32_t x = 2463534242u; /* xorshift32: the same bytes on every machine */
    for (uint32_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buffer[i] = (uint8_t)x;
    }
    crc_init();
    uint32_t crc = 0;
    for (uint32_t r = 0; r < rounds; r++)
        crc = crc32(crc, buffer, size);
    printf("bench: crc rounds=%u size=%u crc=0x%08x\n", rounds, size, crc);
    return 0;
}

static int bench_io(uint32_t rounds)
{
    uint32_t sum = 0;
    for (uint32_t r = 0; r < rounds; r++)
        for (int i = 0; i < 1000; i++)
            sum += inb(0x80);
    printf("bench: io reads=%u sum=%u\n", rounds * 1000, sum);
    return 0;
}

static int bench_idle(uint32_t hz, uint32_t ms)
{
    pit_init(hz);
    pit_sleep_ms(ms);
    cli();
    printf("bench: idle hz=%u ms=%u ticks=%llu\n", hz, ms, pit_ticks());
    return 0;
}

static volatile uint32_t echo_count;

static void echo_handler(unsigned irq, void *ctx)
{
    (void)irq;
    (void)ctx;
    echo_count++;
    outl(ECHO_PORT, echo_count);
}

static int bench_echo(uint32_t irq, uint32_t count, int spin)
{
    irq_register(irq, echo_handler, 0);
    printf("bench: echo irq=%u ready\n", irq);
    outl(ECHO_PORT, 0); /* tells the host the handler is in place */
    if (spin) {
        sti();
        while (echo_count < count)
            ;
        cli();
    } else {
        /* test with interrupts off, then sti;hlt: an IRQ that lands between
         * the test and the hlt is taken after the hlt, so the last one can
         * never leave the CPU halted with nothing more to come */
        cli();
        while (echo_count < count) {
            cpu_idle();
            cli();
        }
    }
    printf("bench: echo irq=%u count=%u\n", irq, echo_count);
    return 0;
}

int main(void)
{
    char mode[16] = "crc";
    mb_cmdline_opt("mode", mode, sizeof(mode));
    uint32_t rounds = (uint32_t)mb_cmdline_int("rounds", 100);
    uint32_t size = (uint32_t)mb_cmdline_int("size_kib", 64) * 1024;
    if (size > sizeof(buffer))
        size = sizeof(buffer);
    if (mode[0] == 'i' && mode[1] == 'o')
        return bench_io(rounds);
    if (mode[0] == 'i')
        return bench_idle((uint32_t)mb_cmdline_int("hz", 100), (uint32_t)mb_cmdline_int("ms", 10000));
    if (mode[0] == 'e')
        return bench_echo((uint32_t)mb_cmdline_int("irq", 5), (uint32_t)mb_cmdline_int("count", 1000),
                          (int)mb_cmdline_int("spin", 0));
    return bench_crc(rounds, size);
}
