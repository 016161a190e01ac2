/* Command rings, the release ring and allocation with out-of-memory
 * handling.  See qxl.h. */
#include "qxl/qxl.h"

#include "lib/console.h"
#include "lib/cpu.h"

#define OOM_ROUNDS 64      /* NOTIFY_OOM rounds before an allocation gives up */
#define OOM_WAIT_MS 200    /* per round */

/* ----------------------------------------------------------- release ring */

static bool release_ring_arm(struct qxl_device *q);
static bool release_ring_nonempty(void *ctx);

static void release_chain(struct qxl_device *q, uint64_t id)
{
    uint32_t guard = 0;
    while (id) {
        void *obj = (void *)(uintptr_t)(uint32_t)id;
        if (!qxl_obj_valid(obj) || qxl_obj_tag(obj) != (uint32_t)(id >> 32) ||
            ++guard > 100000) {
            q->stats.bad_release_ids++;
            printf("qxl: release ring gave id 0x%llx, not a live command\n",
                   (unsigned long long)id);
            return;
        }
        /* the device stored the next id of the batch over our id */
        uint64_t next = ((volatile struct qxl_release_info *)obj)->id;
        qxl_obj_unref(obj);
        q->stats.released++;
        id = next;
    }
}

uint32_t qxl_reclaim(struct qxl_device *q)
{
    volatile struct qxl_release_ring *r = &q->ram->release_ring;
    uint32_t before = q->stats.released;
    while (r->h.cons != r->h.prod) {
        uint64_t head = r->items[r->h.cons & (QXL_RELEASE_RING_SLOTS - 1)];
        release_chain(q, head);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        r->h.cons++;
        q->stats.release_batches++;
    }
    return q->stats.released - before;
}

/* Ask the device for everything it is holding back.  NOTIFY_OOM, not
 * FLUSH_RELEASE: QEMU runs FLUSH_RELEASE's push on the vCPU thread while its
 * display worker may be adding to the same batch (interface_release_resource
 * takes no lock), which can lose a release or leave a stale id in a ring
 * slot; NOTIFY_OOM makes the worker itself flush. */
uint32_t qxl_flush_releases(struct qxl_device *q)
{
    uint32_t n = qxl_reclaim(q);
    if (q->guest_bug)
        return n;
    if (!release_ring_arm(q)) {
        qxl_io(q, QXL_IO_NOTIFY_OOM, 0);
        q->stats.oom_notifies++;
        qxl_wait(release_ring_nonempty, q, OOM_WAIT_MS);
    }
    return n + qxl_reclaim(q);
}

uint32_t qxl_live_objects(const struct qxl_device *q)
{
    return q->ram_arena.live_objects + q->vram_arena.live_objects;
}

/* Arm the release ring's doorbell: the device raises DISPLAY when it pushes
 * the next batch.  Returns true if a batch is already there. */
static bool release_ring_arm(struct qxl_device *q)
{
    volatile struct qxl_release_ring *r = &q->ram->release_ring;
    r->h.notify_on_prod = r->h.prod + 1;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return r->h.cons != r->h.prod;
}

static bool release_ring_nonempty(void *ctx)
{
    struct qxl_device *q = ctx;
    return q->ram->release_ring.h.cons != q->ram->release_ring.h.prod || q->guest_bug;
}

/* One round of "give me memory back": everything on the release ring, then
 * NOTIFY_OOM and sleep for the DISPLAY interrupt of the release ring push. */
static bool oom_round(struct qxl_device *q)
{
    return qxl_flush_releases(q) != 0;
}

static void *alloc_in(struct qxl_device *q, struct qxl_arena *a, size_t size,
                      enum qxl_obj_kind kind)
{
    for (int round = 0;; round++) {
        void *p = qxl_arena_alloc(a, size, kind);
        if (p)
            return p;
        if (round >= OOM_ROUNDS || q->guest_bug)
            break;
        oom_round(q);
    }
    printf("qxl: out of %s memory for %u bytes (%u live objects, largest free %u)\n", a->name,
           (unsigned)size, a->live_objects, (unsigned)qxl_arena_largest_free(a));
    return 0;
}

void *qxl_alloc(struct qxl_device *q, size_t size, enum qxl_obj_kind kind)
{
    return alloc_in(q, &q->ram_arena, size, kind);
}

void *qxl_alloc_vram(struct qxl_device *q, size_t size, enum qxl_obj_kind kind)
{
    return alloc_in(q, &q->vram_arena, size, kind);
}

/* ------------------------------------------------------------ command rings */

uint64_t qxl_release_id(struct qxl_device *q, void *obj)
{
    uint32_t seq = ++q->release_seq;
    if (!seq)
        seq = ++q->release_seq; /* 0 is never a tag: a stale id can not match */
    qxl_obj_set_tag(obj, seq);
    return ((uint64_t)seq << 32) | (uint32_t)(uintptr_t)obj;
}

struct ring_wait {
    struct qxl_device *q;
    volatile struct qxl_cmd_ring *ring;
};

static bool ring_has_room(void *ctx)
{
    struct ring_wait *w = ctx;
    return w->ring->h.prod - w->ring->h.cons < QXL_CMD_RING_SLOTS || w->q->guest_bug;
}

static int ring_push(struct qxl_device *q, volatile struct qxl_cmd_ring *ring,
                     enum qxl_io_port doorbell, uint32_t type, void *obj, qxl_phys_t addr,
                     uint32_t *full_waits)
{
    if (!qxl_obj_valid(obj))
        return QXL_EINVAL;
    if (!addr)
        addr = qxl_phys(q, obj);
    if (!addr)
        return QXL_EINVAL;
    ((struct qxl_release_info *)obj)->id = qxl_release_id(q, obj);
    while (ring->h.prod - ring->h.cons >= QXL_CMD_RING_SLOTS) {
        if (q->guest_bug)
            return QXL_EGUESTBUG;
        (*full_waits)++;
        /* ask for an interrupt when the device takes the next command, and
         * make sure it is awake to take it */
        ring->h.notify_on_cons = ring->h.cons + 1;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        qxl_io(q, doorbell, 0);
        struct ring_wait w = {q, ring};
        if (!qxl_wait(ring_has_room, &w, QXL_TIMEOUT_MS))
            return QXL_ETIMEOUT;
        qxl_reclaim(q);
    }
    if (q->guest_bug)
        return QXL_EGUESTBUG;
    uint32_t prod = ring->h.prod;
    volatile struct qxl_command *slot = &ring->items[prod & (QXL_CMD_RING_SLOTS - 1)];
    slot->data = addr;
    slot->type = type;
    slot->padding = 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    ring->h.prod = prod + 1;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* the device set notify_on_prod when it found the ring empty */
    if (ring->h.prod == ring->h.notify_on_prod) {
        qxl_io(q, doorbell, 0);
        if (doorbell == QXL_IO_NOTIFY_CMD)
            q->stats.notify_cmd++;
        else
            q->stats.notify_cursor++;
    }
    return QXL_OK;
}

int qxl_push_command_at(struct qxl_device *q, enum qxl_cmd_type type, void *cmd_obj,
                       qxl_phys_t addr)
{
    q->stats.cmds++;
    int rc = ring_push(q, (volatile struct qxl_cmd_ring *)&q->ram->cmd_ring, QXL_IO_NOTIFY_CMD,
                       type, cmd_obj, addr, &q->stats.ring_full_waits);
    if (rc != QXL_OK)
        qxl_obj_unref(cmd_obj);
    return rc;
}

int qxl_push_command(struct qxl_device *q, enum qxl_cmd_type type, void *cmd_obj)
{
    return qxl_push_command_at(q, type, cmd_obj, 0);
}

int qxl_push_cursor_command(struct qxl_device *q, void *cmd_obj)
{
    q->stats.cursor_cmds++;
    int rc = ring_push(q, (volatile struct qxl_cmd_ring *)&q->ram->cursor_ring,
                       QXL_IO_NOTIFY_CURSOR, QXL_CMD_CURSOR, cmd_obj, 0,
                       &q->stats.cursor_full_waits);
    if (rc != QXL_OK)
        qxl_obj_unref(cmd_obj);
    return rc;
}
