/* Formatted console output.  The console is COM1 (see serial.h); more
 * sinks (a framebuffer text view, say) can be added with
 * console_add_sink().
 *
 * Format directives: %d %i %u %x %X %o %c %s %p %% with the flags '-', '0',
 * '+', ' ', '#', a width and a precision (numbers or '*'), and the length
 * modifiers hh h l ll z t j.  %p prints 0x followed by 8 hex digits.
 */
#ifndef LIB_CONSOLE_H
#define LIB_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>

/* Format to the console; returns the number of characters written. */
__attribute__((format(printf, 1, 2))) int printf(const char *fmt, ...);
/* va_list form of printf. */
int vprintf(const char *fmt, va_list ap);
/* Write s and a newline to the console; returns 0. */
int puts(const char *s);
/* Write one character to the console; returns it. */
int putchar(int c);

/* Format into buf (always NUL-terminated when size > 0); returns the length
 * the full result would have, like C99. */
__attribute__((format(printf, 3, 4))) int snprintf(char *buf, size_t size, const char *fmt, ...);
/* va_list form of snprintf. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* The formatting engine: calls emit(c, ctx) for every output character and
 * returns the number of characters produced. */
int vformat(void (*emit)(char c, void *ctx), void *ctx, const char *fmt, va_list ap);

/* Also send console output to `sink` (up to 4 extra sinks).  Returns 0, or
 * -1 when all slots are taken. */
int console_add_sink(void (*sink)(char c));

#endif
