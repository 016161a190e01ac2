/* tests: the in-guest QXL (and VDIPort) driver test suites, one TAP line per
 * test on the serial port.
 *
 * Kernel command line:
 *   suite=a,b,...  run these suites in this order (default: all, table order)
 *   dump=1         print every checked pixel region as a golden image
 *   verbose=1      more diagnostics
 *   list=1         list the suites and exit
 * Exit (isa-debug-exit): 0 all passed, 1 a test failed.
 */
#include "lib/multiboot.h"
#include "lib/string.h"
#include "suite.h"

static const struct suite *const all[] = {
    &suite_rom,    &suite_modes,  &suite_memslot, &suite_primary,  &suite_draw,
    &suite_surface, &suite_ring,  &suite_irq,     &suite_cursor,   &suite_monitors,
    &suite_bugs,   &suite_reset,  &suite_agent,   &suite_release,
};
#define N_SUITES (sizeof(all) / sizeof(all[0]))

bool opt_dump, opt_verbose;

static const struct suite *find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SUITES; i++)
        if (strlen(all[i]->name) == len && !strncmp(all[i]->name, name, len))
            return all[i];
    return 0;
}

int main(void)
{
    char val[256];
    opt_dump = mb_cmdline_int("dump", 0) != 0;
    opt_verbose = mb_cmdline_int("verbose", 0) != 0;
    if (mb_cmdline_int("list", 0)) {
        for (size_t i = 0; i < N_SUITES; i++)
            printf("suite %s %d %s\n", all[i]->name, all[i]->tests, all[i]->about);
        return 0;
    }

    const struct suite *chosen[N_SUITES * 2];
    size_t n = 0;
    if (mb_cmdline_opt("suite", val, sizeof(val)) && val[0]) {
        const char *p = val;
        while (*p && n < N_SUITES * 2) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            const struct suite *s = find(p, len);
            if (!s) {
                printf("tests: no suite \"%.*s\" (list=1 lists them)\n", (int)len, p);
                return 1;
            }
            chosen[n++] = s;
            p += len + (e ? 1 : 0);
        }
    } else {
        for (size_t i = 0; i < N_SUITES; i++)
            chosen[n++] = all[i];
    }

    int total = 0;
    for (size_t i = 0; i < n; i++)
        total += chosen[i]->tests;
    printf("# spicevm QXL driver test suites on \"%s\"\n", mb_loader_name());
    plan(total);
    for (size_t i = 0; i < n; i++) {
        diag("suite %s: %s", chosen[i]->name, chosen[i]->about);
        suite_printed = 0;
        chosen[i]->run();
        if (suite_printed < chosen[i]->tests)
            t_bail(chosen[i], "suite ended early");
        else if (suite_printed > chosen[i]->tests)
            printf("# BUG: suite %s printed %d tests, declared %d\n", chosen[i]->name,
                   suite_printed, chosen[i]->tests);
    }
    return tap_summary();
}
