/* Allocation of device memory (the BAR0 page area and the VRAM BAR).
 *
 * An arena is a first-fit, address-ordered, coalescing allocator over one
 * range of device memory.  Every block is an "object": a 32-byte header in
 * front of the payload with a reference count and up to QXL_OBJ_MAX_DEPS
 * dependent objects, released together with it.  The driver's release ids
 * are payload addresses, so a release from the device finds its object
 * directly; the header's magic catches ids the device should never send.
 *
 * Not for interrupt handlers: the driver allocates and frees from the main
 * flow only (release processing included).
 */
#ifndef QXL_MEM_H
#define QXL_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QXL_OBJ_MAX_DEPS 3
#define QXL_OBJ_ALIGN 32

enum qxl_obj_kind {
    QXL_OBJ_RAW = 0,
    QXL_OBJ_DRAWABLE,
    QXL_OBJ_SURFACE_CMD,
    QXL_OBJ_CURSOR_CMD,
    QXL_OBJ_IMAGE,
    QXL_OBJ_SURFACE_MEM,
    QXL_OBJ_CURSOR_SHAPE,
    QXL_OBJ_CLIP,
    QXL_OBJ_PATH,
    QXL_OBJ_STRING,
    QXL_OBJ_MONITORS,
    QXL_OBJ_UPDATE_CMD,
    QXL_OBJ_KINDS
};

struct qxl_arena {
    const char *name;
    uintptr_t base, end;
    void *free_list;         /* first free block (address order) */
    uint32_t live_objects;   /* allocated and not yet freed */
    uint32_t live_bytes;
    uint32_t allocs, frees;  /* since the last qxl_arena_init */
    uint32_t failures;       /* allocations that found no room */
    uint32_t limit;          /* 0, or a cap on live_bytes (to provoke OOM) */
    uint32_t live_by_kind[QXL_OBJ_KINDS];
};

/* Take [base, base + size) as an empty arena (forgets every object). */
void qxl_arena_init(struct qxl_arena *a, const char *name, uintptr_t base, size_t size);
/* A new object of `size` payload bytes (zeroed header, payload not
 * cleared), aligned to QXL_OBJ_ALIGN, with one reference; NULL when no room. */
void *qxl_arena_alloc(struct qxl_arena *a, size_t size, enum qxl_obj_kind kind);
/* Drop one reference; at zero the object's dependents are unreferenced and
 * its block returns to its arena.  Returns false (and does nothing) when
 * `p` is not a live object; such calls (a double free) are counted. */
bool qxl_obj_unref(void *p);
/* Unrefs of non-NULL pointers that were no live object, since boot. */
uint32_t qxl_obj_bad_unrefs(void);
/* Take one more reference. */
void qxl_obj_ref(void *p);
/* Make `dep` live at least as long as `owner` (owner takes a reference).
 * Returns false when owner already has QXL_OBJ_MAX_DEPS dependents. */
bool qxl_obj_attach(void *owner, void *dep);
/* A tag the owner may keep in the header (the driver stores the sequence
 * number of the release id it handed to the device). */
void qxl_obj_set_tag(void *p, uint32_t tag);
uint32_t qxl_obj_tag(const void *p);
/* True if p is the payload of a live object of an initialised arena; no
 * memory outside the arenas is read to find out. */
bool qxl_obj_valid(const void *p);
enum qxl_obj_kind qxl_obj_kind(const void *p);
size_t qxl_obj_size(const void *p);
/* Largest free block, in payload bytes. */
size_t qxl_arena_largest_free(const struct qxl_arena *a);
size_t qxl_arena_free_bytes(const struct qxl_arena *a);

#endif
