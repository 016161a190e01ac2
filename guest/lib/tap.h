/* TAP (Test Anything Protocol) reporter on the console.
 *
 *   plan(3);                      ->  1..3
 *   ok(x == 1, "x is %d", x);     ->  ok 1 - x is 1
 *   skip("no QXL device");        ->  ok 2 # SKIP no QXL device
 *   diag("rate %u Hz", r);        ->  # rate 1000 Hz
 *   tap_exit();                   ->  # 2 passed, 0 failed, 1 skipped of 3
 *                                     and exit through the debug port
 */
#ifndef LIB_TAP_H
#define LIB_TAP_H

#include <stdbool.h>

/* Announce the number of tests ("1..n"). */
void plan(int n);
/* Report one test: "ok N - desc" when cond is true, else "not ok N - desc".
 * Returns cond, so failures can be followed up. */
__attribute__((format(printf, 2, 3))) bool ok(bool cond, const char *fmt, ...);
/* Report one skipped test ("ok N # SKIP reason"). */
__attribute__((format(printf, 1, 2))) void skip(const char *fmt, ...);
/* A diagnostic line ("# ..."), not a test. */
__attribute__((format(printf, 1, 2))) void diag(const char *fmt, ...);
/* Print the summary line; returns EXIT_SUCCESS_CODE when every test passed
 * and the count matches the plan (if one was given), else EXIT_FAILURE_CODE. */
int tap_summary(void);
/* tap_summary(), then qemu_exit() with its result. */
__attribute__((noreturn)) void tap_exit(void);

#endif
