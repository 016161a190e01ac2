#include "tap.h"
#include "console.h"
#include "cpu.h"

#include <stdarg.h>

static int planned = -1, run, failed, skipped;

void plan(int n)
{
    planned = n;
    printf("1..%d\n", n);
}

bool ok(bool cond, const char *fmt, ...)
{
    va_list ap;
    run++;
    if (!cond)
        failed++;
    printf("%sok %d - ", cond ? "" : "not ", run);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return cond;
}

void skip(const char *fmt, ...)
{
    va_list ap;
    run++;
    skipped++;
    printf("ok %d # SKIP ", run);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

int tap_summary(void)
{
    printf("# %d passed, %d failed, %d skipped of %d\n", run - failed - skipped, failed,
           skipped, run);
    if (planned >= 0 && planned != run) {
        printf("# planned %d tests but ran %d\n", planned, run);
        return EXIT_FAILURE_CODE;
    }
    return failed ? EXIT_FAILURE_CODE : EXIT_SUCCESS_CODE;
}

void tap_exit(void)
{
    qemu_exit(tap_summary());
}
