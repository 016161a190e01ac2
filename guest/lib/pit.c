#include "pit.h"
#include "cpu.h"
#include "io.h"
#include "irq.h"

#define PIT_CH0 0x40
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_61 0x61

#define CMD_CH0_LOHI_MODE2 0x34
#define CMD_CH2_LOHI_MODE0 0xb0
#define CMD_CH2_LOHI_MODE2 0xb4
#define CMD_CH2_LATCH 0x80
#define P61_GATE2 0x01
#define P61_SPEAKER 0x02
#define P61_OUT2 0x20

static volatile uint64_t ticks;
static uint32_t rate_hz;
static uint32_t loops_per_ms;

static void pit_tick(unsigned irq, void *ctx)
{
    (void)irq;
    (void)ctx;
    ticks++;
}

uint32_t pit_init(uint32_t hz)
{
    if (hz < 19)
        hz = 19;
    if (hz > PIT_INPUT_HZ)
        hz = PIT_INPUT_HZ;
    uint32_t div = (PIT_INPUT_HZ + hz / 2) / hz;
    if (div > 65535)
        div = 65535;
    if (div < 1)
        div = 1;
    uint32_t flags = irq_save();
    if (rate_hz)
        irq_unregister(0, pit_tick, 0);
    rate_hz = hz;
    ticks = 0;
    outb(PIT_CMD, CMD_CH0_LOHI_MODE2);
    outb(PIT_CH0, div & 0xff);
    outb(PIT_CH0, div >> 8);
    irq_register(0, pit_tick, 0);
    irq_restore(flags);
    return div;
}

void pit_stop(void)
{
    if (rate_hz)
        irq_unregister(0, pit_tick, 0);
    rate_hz = 0;
}

uint64_t pit_ticks(void)
{
    uint32_t flags = irq_save();
    uint64_t t = ticks;
    irq_restore(flags);
    return t;
}

uint32_t pit_hz(void)
{
    return rate_hz;
}

uint64_t pit_uptime_ms(void)
{
    return rate_hz ? pit_ticks() * 1000 / rate_hz : 0;
}

void pit_sleep_ms(uint32_t ms)
{
    if (!rate_hz)
        return;
    uint64_t end = pit_ticks() + ((uint64_t)ms * rate_hz + 999) / 1000;
    while (pit_ticks() < end)
        cpu_idle();
}

void pit_ch2_start(uint16_t count)
{
    /* Gate on, speaker off, then load: mode 0 drives OUT low until the
     * count reaches zero. */
    outb(PORT_61, (inb(PORT_61) & ~P61_SPEAKER) | P61_GATE2);
    outb(PIT_CMD, CMD_CH2_LOHI_MODE0);
    outb(PIT_CH2, count & 0xff);
    outb(PIT_CH2, count >> 8);
}

bool pit_ch2_expired(void)
{
    return (inb(PORT_61) & P61_OUT2) != 0;
}

void pit_delay_us(uint32_t us)
{
    /* 50 ms chunks keep the count below 65536. */
    while (us) {
        uint32_t chunk = us > 50000 ? 50000 : us;
        uint32_t count = (uint32_t)(((uint64_t)chunk * PIT_INPUT_HZ + 999999) / 1000000);
        if (count < 1)
            count = 1;
        pit_ch2_start((uint16_t)count);
        while (!pit_ch2_expired())
            ;
        us -= chunk;
    }
}

static uint16_t ch2_read(void)
{
    outb(PIT_CMD, CMD_CH2_LATCH);
    uint8_t lo = inb(PIT_CH2);
    uint8_t hi = inb(PIT_CH2);
    return (uint16_t)(lo | hi << 8);
}

void stopwatch_start(struct pit_stopwatch *sw)
{
    outb(PORT_61, (inb(PORT_61) & ~P61_SPEAKER) | P61_GATE2);
    outb(PIT_CMD, CMD_CH2_LOHI_MODE2);
    outb(PIT_CH2, 0); /* count 0 = 65536 */
    outb(PIT_CH2, 0);
    sw->last = ch2_read();
    sw->clocks = 0;
}

uint64_t stopwatch_update(struct pit_stopwatch *sw)
{
    uint16_t now = ch2_read();
    /* The counter runs down and wraps at 65536, which 16-bit arithmetic
     * does by itself. */
    sw->clocks += (uint16_t)(sw->last - now);
    sw->last = now;
    return sw->clocks;
}

static void spin(uint32_t loops)
{
    /* The asm keeps the compiler from deleting or folding the loop. */
    while (loops--)
        __asm__ volatile("" : "+r"(loops));
}

uint32_t delay_calibrate(void)
{
    /* Time ever longer spins with the stopwatch until one lasts 10 ms.  Port
     * accesses happen only around each spin, so their cost (large on an
     * emulator) does not leak into the result. */
    struct pit_stopwatch sw;
    uint64_t clocks = 0;
    uint32_t n = 1024;
    for (;;) {
        stopwatch_start(&sw);
        spin(n);
        clocks = stopwatch_update(&sw);
        if (clocks >= PIT_INPUT_HZ / 100 || n >= (1u << 30))
            break;
        n *= 2;
    }
    loops_per_ms = (uint32_t)((uint64_t)n * PIT_INPUT_HZ / (clocks * 1000 + 1));
    if (!loops_per_ms)
        loops_per_ms = 1;
    return loops_per_ms;
}

void udelay(uint32_t us)
{
    if (!loops_per_ms)
        delay_calibrate();
    spin((uint32_t)((uint64_t)loops_per_ms * us / 1000));
}
