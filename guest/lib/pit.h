/* 8254 programmable interval timer.
 *
 * Channel 0 drives IRQ 0 at a programmed rate and counts ticks.  Channel 2
 * (gated through port 0x61 bit 0, output read back on port 0x61 bit 5) is
 * used as an independent one-shot stopwatch: busy-wait delays and the
 * calibration of a spin loop.  The input clock is 1193182 Hz.
 */
#ifndef LIB_PIT_H
#define LIB_PIT_H

#include <stdbool.h>
#include <stdint.h>

#define PIT_INPUT_HZ 1193182u

/* Program channel 0 as a rate generator (mode 2) at `hz` (19..1193182),
 * register the tick handler on IRQ 0 and unmask it.  Returns the divisor
 * used; the true rate is PIT_INPUT_HZ / divisor. */
uint32_t pit_init(uint32_t hz);
/* Mask IRQ 0 and stop counting ticks. */
void pit_stop(void);
/* Timer interrupts since pit_init(). */
uint64_t pit_ticks(void);
/* The rate asked of pit_init() in Hz (0 before pit_init). */
uint32_t pit_hz(void);
/* Milliseconds since pit_init(), from the tick count. */
uint64_t pit_uptime_ms(void);
/* Sleep with cpu_idle() until `ms` milliseconds of ticks have passed
 * (needs pit_init(); leaves interrupts enabled). */
void pit_sleep_ms(uint32_t ms);

/* Start channel 2 counting down `count` input clocks (mode 0, one-shot). */
void pit_ch2_start(uint16_t count);
/* True once the count started by pit_ch2_start() has run out. */
bool pit_ch2_expired(void);
/* Busy-wait `us` microseconds timed by channel 2 (any length; works with
 * interrupts on or off). */
void pit_delay_us(uint32_t us);

/* A stopwatch on channel 2 running as a free 16-bit rate generator
 * (period 65536 input clocks, 54.9 ms).  Each stopwatch_update() adds the
 * clocks since the previous one, so it must be called at least every 54 ms
 * (from a loop around cpu_idle() with a timer running, say).  Unlike
 * pit_delay_us() it lets the CPU halt while time is measured. */
struct pit_stopwatch {
    uint16_t last;   /* counter value at the previous update */
    uint64_t clocks; /* input clocks (1193182 Hz) since stopwatch_start() */
};
/* Start channel 2 free-running and zero the stopwatch. */
void stopwatch_start(struct pit_stopwatch *sw);
/* Account for the time since the last call; returns the total clocks. */
uint64_t stopwatch_update(struct pit_stopwatch *sw);

/* Measure how many iterations of the udelay() spin loop take 1 ms (timed
 * with the channel 2 stopwatch over at least 10 ms) and remember it.
 * Returns loops per ms. */
uint32_t delay_calibrate(void);
/* Spin for about `us` microseconds using the calibrated loop (calibrates
 * on first use).  Cheaper than pit_delay_us() on an emulator: no port I/O. */
void udelay(uint32_t us);

#endif
