#include "console.h"
#include "serial.h"
#include "string.h"

#include <stdbool.h>
#include <stdint.h>

#define MAX_SINKS 4
static void (*sinks[MAX_SINKS])(char c);

int console_add_sink(void (*sink)(char c))
{
    for (int i = 0; i < MAX_SINKS; i++) {
        if (!sinks[i]) {
            sinks[i] = sink;
            return 0;
        }
    }
    return -1;
}

static void console_emit(char c, void *ctx)
{
    (void)ctx;
    serial_putc(c);
    for (int i = 0; i < MAX_SINKS; i++)
        if (sinks[i])
            sinks[i](c);
}

struct spec {
    bool left, zero, plus, space, alt;
    int width, prec; /* prec < 0: not given */
};

struct out {
    void (*emit)(char c, void *ctx);
    void *ctx;
    int count;
};

static void put(struct out *o, char c)
{
    o->emit(c, o->ctx);
    o->count++;
}

static void pad(struct out *o, char c, int n)
{
    while (n-- > 0)
        put(o, c);
}

static void put_string(struct out *o, const struct spec *sp, const char *s)
{
    if (!s)
        s = "(null)";
    int len = (int)(sp->prec >= 0 ? strnlen(s, (size_t)sp->prec) : strlen(s));
    if (!sp->left)
        pad(o, ' ', sp->width - len);
    for (int i = 0; i < len; i++)
        put(o, s[i]);
    if (sp->left)
        pad(o, ' ', sp->width - len);
}

static void put_number(struct out *o, const struct spec *sp, uint64_t v, bool negative,
                       unsigned base, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char buf[24];
    int n = 0;
    do {
        buf[n++] = digits[v % base];
        v /= base;
    } while (v);
    if (sp->prec == 0 && n == 1 && buf[0] == '0')
        n = 0; /* C: "%.0d" of 0 prints nothing */

    const char *prefix = "";
    if (negative)
        prefix = "-";
    else if (sp->plus)
        prefix = "+";
    else if (sp->space)
        prefix = " ";
    if (sp->alt && base == 16 && n)
        prefix = upper ? "0X" : "0x";
    else if (sp->alt && base == 8 && (n == 0 || buf[n - 1] != '0'))
        prefix = "0";
    int plen = (int)strlen(prefix);

    int zeros = sp->prec > n ? sp->prec - n : 0;
    int total = plen + zeros + n;
    if (!sp->left && sp->zero && sp->prec < 0 && sp->width > total) {
        zeros += sp->width - total;
        total = sp->width;
    }
    if (!sp->left)
        pad(o, ' ', sp->width - total);
    for (int i = 0; i < plen; i++)
        put(o, prefix[i]);
    pad(o, '0', zeros);
    while (n)
        put(o, buf[--n]);
    if (sp->left)
        pad(o, ' ', sp->width - total);
}

int vformat(void (*emit)(char c, void *ctx), void *ctx, const char *fmt, va_list ap)
{
    struct out o = {emit, ctx, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        struct spec sp = {false, false, false, false, false, 0, -1};
        for (;;) {
            char f = *++fmt;
            if (f == '-')
                sp.left = true;
            else if (f == '0')
                sp.zero = true;
            else if (f == '+')
                sp.plus = true;
            else if (f == ' ')
                sp.space = true;
            else if (f == '#')
                sp.alt = true;
            else
                break;
        }
        if (*fmt == '*') {
            sp.width = va_arg(ap, int);
            if (sp.width < 0) {
                sp.left = true;
                sp.width = -sp.width;
            }
            fmt++;
        } else {
            while (*fmt >= '0' && *fmt <= '9')
                sp.width = sp.width * 10 + (*fmt++ - '0');
        }
        if (*fmt == '.') {
            fmt++;
            sp.prec = 0;
            if (*fmt == '*') {
                sp.prec = va_arg(ap, int);
                fmt++;
            } else {
                while (*fmt >= '0' && *fmt <= '9')
                    sp.prec = sp.prec * 10 + (*fmt++ - '0');
            }
        }
        int longs = 0; /* 0: int, 1: long, 2: long long; h/hh narrow later */
        int shorts = 0;
        for (;; fmt++) {
            if (*fmt == 'l')
                longs++;
            else if (*fmt == 'h')
                shorts++;
            else if (*fmt == 'z' || *fmt == 't')
                longs = 1; /* size_t / ptrdiff_t are 32-bit here */
            else if (*fmt == 'j')
                longs = 2;
            else
                break;
        }
        char conv = *fmt;
        if (!conv)
            break;
        uint64_t u;
        int64_t s;
        switch (conv) {
        case 'd':
        case 'i':
            if (longs >= 2)
                s = va_arg(ap, long long);
            else if (longs == 1)
                s = va_arg(ap, long);
            else
                s = va_arg(ap, int);
            if (shorts == 1)
                s = (short)s;
            else if (shorts >= 2)
                s = (signed char)s;
            put_number(&o, &sp, s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s, s < 0, 10,
                       false);
            break;
        case 'u':
        case 'x':
        case 'X':
        case 'o':
            if (longs >= 2)
                u = va_arg(ap, unsigned long long);
            else if (longs == 1)
                u = va_arg(ap, unsigned long);
            else
                u = va_arg(ap, unsigned int);
            if (shorts == 1)
                u = (unsigned short)u;
            else if (shorts >= 2)
                u = (unsigned char)u;
            put_number(&o, &sp, u, false, conv == 'u' ? 10 : conv == 'o' ? 8 : 16, conv == 'X');
            break;
        case 'p': {
            struct spec p = {sp.left, true, false, false, true, sp.width > 10 ? sp.width : 10, -1};
            put_number(&o, &p, (uintptr_t)va_arg(ap, void *), false, 16, false);
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            if (!sp.left)
                pad(&o, ' ', sp.width - 1);
            put(&o, c);
            if (sp.left)
                pad(&o, ' ', sp.width - 1);
            break;
        }
        case 's':
            put_string(&o, &sp, va_arg(ap, const char *));
            break;
        case '%':
            put(&o, '%');
            break;
        default:
            /* Unknown directive: show it rather than silently eat arguments. */
            put(&o, '%');
            put(&o, conv);
            break;
        }
    }
    return o.count;
}

int vprintf(const char *fmt, va_list ap)
{
    return vformat(console_emit, NULL, fmt, ap);
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int putchar(int c)
{
    console_emit((char)c, NULL);
    return c;
}

int puts(const char *s)
{
    while (*s)
        console_emit(*s++, NULL);
    console_emit('\n', NULL);
    return 0;
}

struct bufctx {
    char *buf;
    size_t size, len;
};

static void buf_emit(char c, void *ctx)
{
    struct bufctx *b = ctx;
    if (b->len + 1 < b->size)
        b->buf[b->len] = c;
    b->len++;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct bufctx b = {buf, size, 0};
    int n = vformat(buf_emit, &b, fmt, ap);
    if (size)
        buf[b.len < size ? b.len : size - 1] = '\0';
    return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
