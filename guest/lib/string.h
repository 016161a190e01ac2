/* Freestanding string and memory functions (the subset of <string.h> the
 * guests use, with the standard semantics).  GCC may emit calls to memcpy,
 * memmove, memset and memcmp on its own, so these names are the C ones. */
#ifndef LIB_STRING_H
#define LIB_STRING_H

#include <stddef.h>
#include <stdint.h>

/* Copy n bytes; the regions must not overlap. Returns dst. */
void *memcpy(void *dst, const void *src, size_t n);
/* Copy n bytes; the regions may overlap. Returns dst. */
void *memmove(void *dst, const void *src, size_t n);
/* Fill n bytes with (unsigned char)c. Returns dst. */
void *memset(void *dst, int c, size_t n);
/* Compare n bytes: <0, 0 or >0 like the C library. */
int memcmp(const void *a, const void *b, size_t n);
/* Length of a NUL-terminated string. */
size_t strlen(const char *s);
/* Length of s, but at most max. */
size_t strnlen(const char *s, size_t max);
/* Compare strings: <0, 0 or >0. */
int strcmp(const char *a, const char *b);
/* Compare at most n characters. */
int strncmp(const char *a, const char *b, size_t n);
/* First occurrence of c in s (c may be '\0'), or NULL. */
char *strchr(const char *s, int c);
/* Copy src into dst of size `size`, always NUL-terminated when size > 0;
 * returns strlen(src) (so truncation happened iff result >= size). */
size_t strlcpy(char *dst, const char *src, size_t size);
/* Parse an unsigned integer in `base` (0: auto 0x/0 prefix); *end gets the
 * first unparsed character when end is not NULL. */
unsigned long strtoul(const char *s, char **end, int base);

#endif
