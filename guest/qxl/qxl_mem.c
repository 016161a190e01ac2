/* Device-memory arenas and reference-counted objects (see qxl_mem.h). */
#include "qxl/qxl_mem.h"

#include "lib/console.h"

#define OBJ_LIVE 0x4a424f51u /* "QOBJ" */
#define OBJ_FREE 0x45455246u /* "FREE" */
#define HDR_SIZE 32u

struct obj_hdr {
    uint32_t magic;
    uint32_t size; /* whole block, header included */
    struct qxl_arena *arena;
    uint16_t refs;
    uint8_t kind;
    uint8_t ndeps;
    uint32_t tag;
    uint32_t deps[QXL_OBJ_MAX_DEPS];
};
_Static_assert(sizeof(struct obj_hdr) == HDR_SIZE, "object header size");

struct free_blk {
    uint32_t magic;
    uint32_t size;
    struct free_blk *next;
};

static inline struct obj_hdr *hdr_of(const void *p)
{
    return (struct obj_hdr *)((uintptr_t)p - HDR_SIZE);
}

/* Every arena ever initialised: a pointer is only looked at (its header
 * read) once it is known to lie inside one of them, so an id the device
 * made up never makes the driver read device registers or unmapped memory. */
#define MAX_ARENAS 4
static struct qxl_arena *arenas[MAX_ARENAS];
static uint32_t bad_unrefs;

static void arena_register(struct qxl_arena *a)
{
    for (int i = 0; i < MAX_ARENAS; i++) {
        if (arenas[i] == a)
            return;
        if (!arenas[i]) {
            arenas[i] = a;
            return;
        }
    }
    printf("qxl: more than %d arenas: objects of %s will not be recognised\n", MAX_ARENAS,
           a->name);
}

static struct qxl_arena *arena_holding(uintptr_t hdr)
{
    for (int i = 0; i < MAX_ARENAS && arenas[i]; i++) {
        struct qxl_arena *a = arenas[i];
        if (hdr >= a->base && hdr < a->end && a->end - hdr >= HDR_SIZE)
            return a;
    }
    return 0;
}

void qxl_arena_init(struct qxl_arena *a, const char *name, uintptr_t base, size_t size)
{
    uintptr_t start = (base + QXL_OBJ_ALIGN - 1) & ~(uintptr_t)(QXL_OBJ_ALIGN - 1);
    uintptr_t end = (base + size) & ~(uintptr_t)(QXL_OBJ_ALIGN - 1);
    uint32_t limit = a->limit;
    *a = (struct qxl_arena){.name = name, .base = start, .end = end, .limit = limit};
    if (end > start + HDR_SIZE) {
        struct free_blk *f = (struct free_blk *)start;
        f->magic = OBJ_FREE;
        f->size = end - start;
        f->next = 0;
        a->free_list = f;
    }
    arena_register(a);
}

void *qxl_arena_alloc(struct qxl_arena *a, size_t size, enum qxl_obj_kind kind)
{
    uint32_t need = (size + HDR_SIZE + QXL_OBJ_ALIGN - 1) & ~(QXL_OBJ_ALIGN - 1);
    if (size > a->end - a->base || (a->limit && a->live_bytes + need > a->limit)) {
        a->failures++;
        return 0;
    }
    struct free_blk **link = (struct free_blk **)&a->free_list;
    for (struct free_blk *f = *link; f; link = &f->next, f = f->next) {
        if (f->size < need)
            continue;
        struct obj_hdr *h;
        if (f->size - need >= HDR_SIZE + QXL_OBJ_ALIGN) {
            /* take the tail, so the free block stays where it is in the list */
            f->size -= need;
            h = (struct obj_hdr *)((uintptr_t)f + f->size);
        } else {
            need = f->size;
            *link = f->next;
            h = (struct obj_hdr *)f;
        }
        *h = (struct obj_hdr){.magic = OBJ_LIVE, .size = need, .arena = a, .refs = 1,
                              .kind = kind};
        a->live_objects++;
        a->live_bytes += need;
        a->live_by_kind[kind]++;
        a->allocs++;
        return (uint8_t *)h + HDR_SIZE;
    }
    a->failures++;
    return 0;
}

static void arena_release(struct obj_hdr *h)
{
    struct qxl_arena *a = h->arena;
    uint32_t size = h->size;
    a->live_objects--;
    a->live_bytes -= size;
    a->live_by_kind[h->kind]--;
    a->frees++;

    struct free_blk *blk = (struct free_blk *)h;
    struct free_blk *prev = 0, *next = a->free_list;
    while (next && next < blk) {
        prev = next;
        next = next->next;
    }
    blk->magic = OBJ_FREE;
    blk->size = size;
    blk->next = next;
    if (next && (uintptr_t)blk + blk->size == (uintptr_t)next) {
        blk->size += next->size;
        blk->next = next->next;
        next->magic = 0;
    }
    if (prev && (uintptr_t)prev + prev->size == (uintptr_t)blk) {
        prev->size += blk->size;
        prev->next = blk->next;
        blk->magic = 0;
    } else if (prev) {
        prev->next = blk;
    } else {
        a->free_list = blk;
    }
}

bool qxl_obj_valid(const void *p)
{
    if (!p || ((uintptr_t)p & (QXL_OBJ_ALIGN - 1)) || (uintptr_t)p < HDR_SIZE)
        return false;
    const struct obj_hdr *h = hdr_of(p);
    struct qxl_arena *a = arena_holding((uintptr_t)h);
    if (!a || h->magic != OBJ_LIVE || h->arena != a)
        return false;
    return h->size >= HDR_SIZE && h->size <= a->end - (uintptr_t)h;
}

uint32_t qxl_obj_bad_unrefs(void)
{
    return bad_unrefs;
}

bool qxl_obj_unref(void *p)
{
    if (!qxl_obj_valid(p)) {
        if (p)
            bad_unrefs++;
        return false;
    }
    struct obj_hdr *h = hdr_of(p);
    if (--h->refs)
        return true;
    uint32_t deps[QXL_OBJ_MAX_DEPS];
    unsigned n = h->ndeps;
    for (unsigned i = 0; i < n; i++)
        deps[i] = h->deps[i];
    arena_release(h);
    for (unsigned i = 0; i < n; i++) {
        if (!qxl_obj_unref((void *)(uintptr_t)deps[i]))
            printf("qxl: object %p had a stale dependent 0x%08x\n", p, deps[i]);
    }
    return true;
}

void qxl_obj_ref(void *p)
{
    if (qxl_obj_valid(p))
        hdr_of(p)->refs++;
}

bool qxl_obj_attach(void *owner, void *dep)
{
    if (!qxl_obj_valid(owner) || !qxl_obj_valid(dep))
        return false;
    struct obj_hdr *h = hdr_of(owner);
    if (h->ndeps >= QXL_OBJ_MAX_DEPS)
        return false;
    h->deps[h->ndeps++] = (uint32_t)(uintptr_t)dep;
    hdr_of(dep)->refs++;
    return true;
}

void qxl_obj_set_tag(void *p, uint32_t tag)
{
    if (qxl_obj_valid(p))
        hdr_of(p)->tag = tag;
}

uint32_t qxl_obj_tag(const void *p)
{
    return qxl_obj_valid(p) ? hdr_of(p)->tag : 0;
}

enum qxl_obj_kind qxl_obj_kind(const void *p)
{
    return qxl_obj_valid(p) ? (enum qxl_obj_kind)hdr_of(p)->kind : QXL_OBJ_RAW;
}

size_t qxl_obj_size(const void *p)
{
    return qxl_obj_valid(p) ? hdr_of(p)->size - HDR_SIZE : 0;
}

size_t qxl_arena_largest_free(const struct qxl_arena *a)
{
    uint32_t best = 0;
    for (const struct free_blk *f = a->free_list; f; f = f->next)
        if (f->size > best)
            best = f->size;
    return best > HDR_SIZE ? best - HDR_SIZE : 0;
}

size_t qxl_arena_free_bytes(const struct qxl_arena *a)
{
    size_t total = 0;
    for (const struct free_blk *f = a->free_list; f; f = f->next)
        total += f->size;
    return total;
}
