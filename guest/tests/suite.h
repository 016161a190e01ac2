/* Shared pieces of the in-guest QXL test suites: the suite table, pixel
 * checks against the reference renderer, golden dumps, guest-bug helpers. */
#ifndef TESTS_SUITE_H
#define TESTS_SUITE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/console.h"
#include "lib/pit.h"
#include "lib/tap.h"
#include "qxl/qxl_draw.h"
#include "ref.h"

struct suite {
    const char *name;
    int tests;                /* TAP lines the suite prints, always */
    void (*run)(void);
    const char *about;
};

extern const struct suite suite_rom, suite_modes, suite_memslot, suite_primary, suite_draw,
    suite_surface, suite_ring, suite_irq, suite_reset, suite_bugs, suite_cursor,
    suite_monitors, suite_agent, suite_release;

/* options from the kernel command line */
extern bool opt_dump;     /* dump checked regions as hex (golden images) */
extern bool opt_verbose;

/* number of tests printed so far by the current suite */
extern int suite_printed;
/* ok()/skip() that count for the suite */
bool t_ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* print "not ok" for every test of the suite not printed yet (a suite that
 * could not go on) */
void t_bail(const struct suite *s, const char *why);

/* The device ready with a 640x480 xRGB primary (re-initialised and reset
 * if a previous test left it in trouble).  False if that failed. */
bool t_ready(void);

/* UPDATE_AREA then copy the region r of surface sid into out (xRGB,
 * top byte cleared). */
bool t_read(uint32_t sid, const struct qxl_rect *r, uint32_t *out);
/* Compare the device's pixels of r with `expect`; reports mismatches as
 * diagnostics and, with dump=1, prints the region as a golden image. */
bool t_check(const char *name, uint32_t sid, const struct qxl_rect *r, const uint32_t *expect);
/* Golden dump of a pixel buffer (see README.md for the format). */
void t_dump(const char *name, const char *stage, uint32_t sid, const struct qxl_rect *r,
            const uint32_t *px);

/* Wait up to ms for an ERROR interrupt; true if one came. */
bool t_wait_error(uint32_t ms);
/* Wait until the device has taken everything from the display ring. */
bool t_wait_idle(uint32_t ms);

/* A test pattern: a 32-bit gradient image w x h with a seed, xRGB. */
void t_pattern(uint32_t *px, uint32_t w, uint32_t h, uint32_t seed);

#endif
