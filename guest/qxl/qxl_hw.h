/* The QXL device as the guest sees it: PCI identity, BARs, I/O ports, the
 * ROM and RAM headers, rings, and the command structures the device reads
 * from guest memory.  Everything is little-endian and packed; offsets are
 * checked at compile time at the end of this file.
 *
 * Addresses inside commands are "QXL physical": bits 63..56 memory slot id,
 * 55..48 slot generation, 47..0 offset from the start of the slot.
 */
#ifndef QXL_HW_H
#define QXL_HW_H

#include <stdint.h>

#define QXL_VENDOR_ID 0x1b36
#define QXL_DEVICE_ID 0x0100
#define QXL_ROM_MAGIC 0x4f525851u /* "QXRO" */
#define QXL_RAM_MAGIC 0x41525851u /* "QXRA" */

/* BAR numbers */
#define QXL_BAR_RAM 0  /* primary surface area, device pages, RAM header */
#define QXL_BAR_VRAM 1 /* off-screen surfaces */
#define QXL_BAR_ROM 2  /* read-only: ROM header and mode list */
#define QXL_BAR_IO 3   /* byte-wide I/O ports */

/* I/O ports (offsets from BAR3); the byte written is the argument */
enum qxl_io_port {
    QXL_IO_NOTIFY_CMD = 0,
    QXL_IO_NOTIFY_CURSOR = 1,
    QXL_IO_UPDATE_AREA = 2,
    QXL_IO_UPDATE_IRQ = 3,
    QXL_IO_NOTIFY_OOM = 4,
    QXL_IO_RESET = 5,
    QXL_IO_SET_MODE = 6,
    QXL_IO_LOG = 7,
    QXL_IO_MEMSLOT_ADD = 8,
    QXL_IO_MEMSLOT_DEL = 9,
    QXL_IO_DETACH_PRIMARY = 10,
    QXL_IO_ATTACH_PRIMARY = 11,
    QXL_IO_CREATE_PRIMARY = 12,
    QXL_IO_DESTROY_PRIMARY = 13,
    QXL_IO_DESTROY_SURFACE_WAIT = 14,
    QXL_IO_DESTROY_ALL_SURFACES = 15,
    QXL_IO_UPDATE_AREA_ASYNC = 16,
    QXL_IO_MEMSLOT_ADD_ASYNC = 17,
    QXL_IO_CREATE_PRIMARY_ASYNC = 18,
    QXL_IO_DESTROY_PRIMARY_ASYNC = 19,
    QXL_IO_DESTROY_SURFACE_ASYNC = 20,
    QXL_IO_DESTROY_ALL_SURFACES_ASYNC = 21,
    QXL_IO_FLUSH_SURFACES_ASYNC = 22,
    QXL_IO_FLUSH_RELEASE = 23,
    QXL_IO_MONITORS_CONFIG_ASYNC = 24,
};

/* int_pending / int_mask bits */
#define QXL_INT_DISPLAY (1u << 0)        /* cmd ring room, release ring push */
#define QXL_INT_CURSOR (1u << 1)         /* cursor ring room */
#define QXL_INT_IO_CMD (1u << 2)         /* an async I/O finished */
#define QXL_INT_ERROR (1u << 3)          /* the device saw a guest bug */
#define QXL_INT_CLIENT (1u << 4)         /* client came/went, caps changed */
#define QXL_INT_CLIENT_MONITORS (1u << 5) /* client monitors config in ROM */
#define QXL_INT_ALL 0x3fu

typedef uint64_t qxl_phys_t;
typedef int32_t qxl_fixed_t; /* 28.4 fixed point */

struct qxl_point { int32_t x, y; } __attribute__((packed));
struct qxl_point16 { int16_t x, y; } __attribute__((packed));
struct qxl_point_fix { qxl_fixed_t x, y; } __attribute__((packed));
struct qxl_rect { int32_t top, left, bottom, right; } __attribute__((packed));
struct qxl_urect { uint32_t top, left, bottom, right; } __attribute__((packed));

#define QXL_MAX_CLIENT_HEADS 64

struct qxl_rom {
    uint32_t magic;
    uint32_t id;
    uint32_t update_id;
    uint32_t compression_level;
    uint32_t log_level;
    uint32_t mode;
    uint32_t modes_offset;
    uint32_t num_pages;
    uint32_t pages_offset;
    uint32_t draw_area_offset;
    uint32_t surface0_area_size;
    uint32_t ram_header_offset;
    uint32_t mm_clock;
    uint32_t n_surfaces;
    uint64_t flags;
    uint8_t slots_start;
    uint8_t slots_end;
    uint8_t slot_gen_bits;
    uint8_t slot_id_bits;
    uint8_t slot_generation;
    uint8_t client_present;
    uint8_t client_capabilities[58];
    uint32_t client_monitors_config_crc;
    struct {
        uint16_t count;
        uint16_t padding;
        struct qxl_urect heads[QXL_MAX_CLIENT_HEADS];
    } __attribute__((packed)) client_monitors_config;
} __attribute__((packed));

struct qxl_mode {
    uint32_t id;
    uint32_t x_res;
    uint32_t y_res;
    uint32_t bits;
    uint32_t stride;
    uint32_t x_mili;
    uint32_t y_mili;
    uint32_t orientation;
} __attribute__((packed));

/* ring element: a command's address and type */
struct qxl_command {
    qxl_phys_t data;
    uint32_t type;
    uint32_t padding;
} __attribute__((packed));

enum qxl_cmd_type {
    QXL_CMD_NOP = 0,
    QXL_CMD_DRAW = 1,
    QXL_CMD_UPDATE = 2,
    QXL_CMD_CURSOR = 3,
    QXL_CMD_MESSAGE = 4,
    QXL_CMD_SURFACE = 5,
};

/* Ring header shared by the three rings (spice ipc ring rules):
 * empty when prod == cons, full when prod - cons == num_items; the
 * producer rings the doorbell when its new prod equals notify_on_prod, the
 * consumer interrupts when its new cons equals notify_on_cons. */
struct qxl_ring_hdr {
    uint32_t num_items;
    uint32_t prod;
    uint32_t notify_on_prod;
    uint32_t cons;
    uint32_t notify_on_cons;
} __attribute__((packed));

#define QXL_CMD_RING_SLOTS 32
#define QXL_CURSOR_RING_SLOTS 32
#define QXL_RELEASE_RING_SLOTS 8
#define QXL_LOG_BUF_SIZE 4096

struct qxl_cmd_ring {
    struct qxl_ring_hdr h;
    struct qxl_command items[QXL_CMD_RING_SLOTS];
} __attribute__((packed));

struct qxl_release_ring {
    struct qxl_ring_hdr h;
    uint64_t items[QXL_RELEASE_RING_SLOTS];
} __attribute__((packed));

struct qxl_surface_create {
    uint32_t width;
    uint32_t height;
    int32_t stride; /* negative: bottom-up rows */
    uint32_t format;
    uint32_t position;
    uint32_t mouse_mode;
    uint32_t flags;
    uint32_t type;
    qxl_phys_t mem;
} __attribute__((packed));

struct qxl_ram {
    uint32_t magic;
    uint32_t int_pending;
    uint32_t int_mask;
    uint8_t log_buf[QXL_LOG_BUF_SIZE];
    struct qxl_cmd_ring cmd_ring;
    struct qxl_cmd_ring cursor_ring;
    struct qxl_release_ring release_ring;
    struct qxl_rect update_area;
    uint32_t update_surface;
    struct { uint64_t mem_start, mem_end; } __attribute__((packed)) mem_slot;
    struct qxl_surface_create create_surface;
    uint64_t flags;
    qxl_phys_t monitors_config;
} __attribute__((packed, aligned(4)));

/* Every resource the device hands back starts with this: the driver's id on
 * the way in, the next released id of the same batch on the way out. */
struct qxl_release_info {
    uint64_t id;
} __attribute__((packed));

struct qxl_data_chunk {
    uint32_t data_size;
    qxl_phys_t prev_chunk;
    qxl_phys_t next_chunk;
    uint8_t data[];
} __attribute__((packed));

/* surface formats */
enum qxl_surface_fmt {
    QXL_SURF_FMT_1_A = 1,
    QXL_SURF_FMT_8_A = 8,
    QXL_SURF_FMT_16_555 = 16,
    QXL_SURF_FMT_32_xRGB = 32,
    QXL_SURF_FMT_16_565 = 80,
    QXL_SURF_FMT_32_ARGB = 96,
};

/* ---- drawables ---- */

enum qxl_draw_type {
    QXL_DRAW_NOP = 0,
    QXL_DRAW_FILL = 1,
    QXL_DRAW_OPAQUE = 2,
    QXL_DRAW_COPY = 3,
    QXL_COPY_BITS = 4,
    QXL_DRAW_BLEND = 5,
    QXL_DRAW_BLACKNESS = 6,
    QXL_DRAW_WHITENESS = 7,
    QXL_DRAW_INVERS = 8,
    QXL_DRAW_ROP3 = 9,
    QXL_DRAW_STROKE = 10,
    QXL_DRAW_TEXT = 11,
    QXL_DRAW_TRANSPARENT = 12,
    QXL_DRAW_ALPHA_BLEND = 13,
    QXL_DRAW_COMPOSITE = 14,
};

/* how the server may treat a drawable when culling (occlusion) */
enum qxl_effect {
    QXL_EFFECT_BLEND = 0,
    QXL_EFFECT_OPAQUE = 1,
    QXL_EFFECT_REVERT_ON_DUP = 2,
    QXL_EFFECT_BLACKNESS_ON_DUP = 3,
    QXL_EFFECT_WHITENESS_ON_DUP = 4,
    QXL_EFFECT_NOP_ON_DUP = 5,
    QXL_EFFECT_NOP = 6,
    QXL_EFFECT_OPAQUE_BRUSH = 7,
};

/* raster operation descriptor bits */
#define QXL_ROPD_INVERS_SRC (1u << 0)
#define QXL_ROPD_INVERS_BRUSH (1u << 1)
#define QXL_ROPD_INVERS_DEST (1u << 2)
#define QXL_ROPD_OP_PUT (1u << 3)
#define QXL_ROPD_OP_OR (1u << 4)
#define QXL_ROPD_OP_AND (1u << 5)
#define QXL_ROPD_OP_XOR (1u << 6)
#define QXL_ROPD_OP_BLACKNESS (1u << 7)
#define QXL_ROPD_OP_WHITENESS (1u << 8)
#define QXL_ROPD_OP_INVERS (1u << 9)
#define QXL_ROPD_INVERS_RES (1u << 10)

enum qxl_brush_type { QXL_BRUSH_NONE = 0, QXL_BRUSH_SOLID = 1, QXL_BRUSH_PATTERN = 2 };
enum qxl_clip_type { QXL_CLIP_NONE = 0, QXL_CLIP_RECTS = 1 };
enum qxl_scale_mode { QXL_SCALE_INTERPOLATE = 0, QXL_SCALE_NEAREST = 1 };

#define QXL_MASK_INVERS 1u
#define QXL_ALPHA_DEST_HAS_ALPHA 1u
#define QXL_ALPHA_SRC_SURFACE_HAS_ALPHA 2u

struct qxl_pattern {
    qxl_phys_t pat; /* a qxl_image */
    struct qxl_point pos;
} __attribute__((packed));

struct qxl_brush {
    uint32_t type;
    union {
        uint32_t color;
        struct qxl_pattern pattern;
    } __attribute__((packed)) u;
} __attribute__((packed));

struct qxl_qmask {
    uint8_t flags;
    struct qxl_point pos;
    qxl_phys_t bitmap;
} __attribute__((packed));

struct qxl_fill {
    struct qxl_brush brush;
    uint16_t rop_descriptor;
    struct qxl_qmask mask;
} __attribute__((packed));

struct qxl_opaque {
    qxl_phys_t src_bitmap;
    struct qxl_rect src_area;
    struct qxl_brush brush;
    uint16_t rop_descriptor;
    uint8_t scale_mode;
    struct qxl_qmask mask;
} __attribute__((packed));

/* also the layout of BLEND */
struct qxl_copy {
    qxl_phys_t src_bitmap;
    struct qxl_rect src_area;
    uint16_t rop_descriptor;
    uint8_t scale_mode;
    struct qxl_qmask mask;
} __attribute__((packed));

struct qxl_transparent {
    qxl_phys_t src_bitmap;
    struct qxl_rect src_area;
    uint32_t src_color;
    uint32_t true_color;
} __attribute__((packed));

struct qxl_alpha_blend {
    uint16_t alpha_flags;
    uint8_t alpha;
    qxl_phys_t src_bitmap;
    struct qxl_rect src_area;
} __attribute__((packed));

struct qxl_copy_bits {
    struct qxl_point src_pos;
} __attribute__((packed));

struct qxl_rop3 {
    qxl_phys_t src_bitmap;
    struct qxl_rect src_area;
    struct qxl_brush brush;
    uint8_t rop3;
    uint8_t scale_mode;
    struct qxl_qmask mask;
} __attribute__((packed));

struct qxl_line_attr {
    uint8_t flags;
    uint8_t join_style;
    uint8_t end_style;
    uint8_t style_nseg;
    qxl_fixed_t width;
    qxl_fixed_t miter_limit;
    qxl_phys_t style;
} __attribute__((packed));

struct qxl_stroke {
    qxl_phys_t path;
    struct qxl_line_attr attr;
    struct qxl_brush brush;
    uint16_t fore_mode;
    uint16_t back_mode;
} __attribute__((packed));

struct qxl_text {
    qxl_phys_t str;
    struct qxl_rect back_area;
    struct qxl_brush fore_brush;
    struct qxl_brush back_brush;
    uint16_t fore_mode;
    uint16_t back_mode;
} __attribute__((packed));

/* BLACKNESS, WHITENESS, INVERS */
struct qxl_mask_only {
    struct qxl_qmask mask;
} __attribute__((packed));

struct qxl_clip {
    uint32_t type;
    qxl_phys_t data; /* a qxl_clip_rects when type is QXL_CLIP_RECTS */
} __attribute__((packed));

struct qxl_drawable {
    struct qxl_release_info release_info;
    uint32_t surface_id;
    uint8_t effect;
    uint8_t type;
    uint8_t self_bitmap;
    struct qxl_rect self_bitmap_area;
    struct qxl_rect bbox;
    struct qxl_clip clip;
    uint32_t mm_time;
    int32_t surfaces_dest[3];
    struct qxl_rect surfaces_rects[3];
    union {
        struct qxl_fill fill;
        struct qxl_opaque opaque;
        struct qxl_copy copy;
        struct qxl_transparent transparent;
        struct qxl_alpha_blend alpha_blend;
        struct qxl_copy_bits copy_bits;
        struct qxl_copy blend;
        struct qxl_rop3 rop3;
        struct qxl_stroke stroke;
        struct qxl_text text;
        struct qxl_mask_only blackness, whiteness, invers;
    } __attribute__((packed)) u;
} __attribute__((packed));

struct qxl_clip_rects {
    uint32_t num_rects;
    struct qxl_data_chunk chunk; /* followed by num_rects qxl_rect */
} __attribute__((packed));

/* path: a chunk of segments, each flags, count, count 28.4 points */
#define QXL_PATH_BEGIN (1u << 0)
#define QXL_PATH_END (1u << 1)
#define QXL_PATH_CLOSE (1u << 3)
#define QXL_PATH_BEZIER (1u << 4)

struct qxl_path_seg {
    uint32_t flags;
    uint32_t count;
    struct qxl_point_fix points[];
} __attribute__((packed));

struct qxl_path {
    uint32_t data_size;
    struct qxl_data_chunk chunk;
} __attribute__((packed));

/* text: glyphs one after another in the chunk data */
#define QXL_STRING_RASTER_A1 (1u << 0)
#define QXL_STRING_RASTER_A4 (1u << 1)
#define QXL_STRING_RASTER_A8 (1u << 2)

struct qxl_raster_glyph {
    struct qxl_point render_pos;
    struct qxl_point glyph_origin;
    uint16_t width;
    uint16_t height;
    uint8_t data[]; /* rows bottom line first, MSB = leftmost pixel (A1) */
} __attribute__((packed));

struct qxl_string {
    uint32_t data_size;
    uint16_t length;
    uint16_t flags;
    struct qxl_data_chunk chunk;
} __attribute__((packed));

/* ---- images ---- */

enum qxl_image_type { QXL_IMAGE_BITMAP = 0, QXL_IMAGE_QUIC = 1, QXL_IMAGE_SURFACE = 104 };
enum qxl_image_group { QXL_IMAGE_GROUP_DRIVER = 0, QXL_IMAGE_GROUP_DEVICE = 1,
                       QXL_IMAGE_GROUP_RED = 2, QXL_IMAGE_GROUP_DRIVER_DONT_CACHE = 3 };
#define QXL_IMAGE_CACHE (1u << 0)

enum qxl_bitmap_fmt {
    QXL_BITMAP_1BIT_LE = 1,
    QXL_BITMAP_1BIT_BE = 2,
    QXL_BITMAP_4BIT_LE = 3,
    QXL_BITMAP_4BIT_BE = 4,
    QXL_BITMAP_8BIT = 5,
    QXL_BITMAP_16BIT = 6, /* x1r5g5b5 */
    QXL_BITMAP_24BIT = 7, /* b, g, r bytes */
    QXL_BITMAP_32BIT = 8, /* xRGB */
    QXL_BITMAP_RGBA = 9,  /* ARGB, premultiplied */
    QXL_BITMAP_8BIT_A = 10,
};
#define QXL_BITMAP_DIRECT (1u << 0)   /* data points at the pixels, not a chunk */
#define QXL_BITMAP_UNSTABLE (1u << 1)
#define QXL_BITMAP_TOP_DOWN (1u << 2)

struct qxl_image_descriptor {
    uint64_t id;
    uint8_t type;
    uint8_t flags;
    uint32_t width;
    uint32_t height;
} __attribute__((packed));

struct qxl_palette {
    uint64_t unique;
    uint16_t num_ents;
    uint32_t ents[];
} __attribute__((packed));

struct qxl_bitmap {
    uint8_t format;
    uint8_t flags;
    uint32_t x;
    uint32_t y;
    uint32_t stride;
    qxl_phys_t palette;
    qxl_phys_t data;
} __attribute__((packed));

struct qxl_image {
    struct qxl_image_descriptor descriptor;
    union {
        struct qxl_bitmap bitmap;
        struct { uint32_t surface_id; } __attribute__((packed)) surface_image;
    } __attribute__((packed)) u;
} __attribute__((packed));

/* ---- surfaces ---- */

enum { QXL_SURFACE_CMD_CREATE = 0, QXL_SURFACE_CMD_DESTROY = 1 };

struct qxl_surface_cmd {
    struct qxl_release_info release_info;
    uint32_t surface_id;
    uint8_t type;
    uint32_t flags;
    struct {
        uint32_t format;
        uint32_t width;
        uint32_t height;
        int32_t stride;
        qxl_phys_t data;
    } __attribute__((packed)) u;
} __attribute__((packed));

/* ---- cursor ---- */

enum { QXL_CURSOR_SET = 0, QXL_CURSOR_MOVE = 1, QXL_CURSOR_HIDE = 2, QXL_CURSOR_TRAIL = 3 };
enum { QXL_CURSOR_ALPHA = 0, QXL_CURSOR_MONO = 1 };

struct qxl_cursor_header {
    uint64_t unique;
    uint16_t type;
    uint16_t width;
    uint16_t height;
    uint16_t hot_spot_x;
    uint16_t hot_spot_y;
} __attribute__((packed));

struct qxl_cursor {
    struct qxl_cursor_header header;
    uint32_t data_size;
    struct qxl_data_chunk chunk;
} __attribute__((packed));

struct qxl_cursor_cmd {
    struct qxl_release_info release_info;
    uint8_t type;
    union {
        struct {
            struct qxl_point16 position;
            uint8_t visible;
            qxl_phys_t shape;
        } __attribute__((packed)) set;
        struct { uint16_t length, frequency; } __attribute__((packed)) trail;
        struct qxl_point16 position;
    } __attribute__((packed)) u;
    uint8_t device_data[128];
} __attribute__((packed));

/* ---- monitors ---- */

struct qxl_head {
    uint32_t id;
    uint32_t surface_id;
    uint32_t width;
    uint32_t height;
    uint32_t x;
    uint32_t y;
    uint32_t flags;
} __attribute__((packed));

struct qxl_monitors_config {
    uint16_t count;
    uint16_t max_allowed;
    struct qxl_head heads[];
} __attribute__((packed));

/* Layout checks against the device's ABI. */
#define QXL_ASSERT_OFFSET(type, field, off) \
    _Static_assert(__builtin_offsetof(type, field) == (off), #type "." #field)
_Static_assert(sizeof(struct qxl_rom) == 1160, "qxl_rom size");
QXL_ASSERT_OFFSET(struct qxl_rom, n_surfaces, 52);
QXL_ASSERT_OFFSET(struct qxl_rom, slots_start, 64);
QXL_ASSERT_OFFSET(struct qxl_rom, client_monitors_config_crc, 128);
QXL_ASSERT_OFFSET(struct qxl_ram, cmd_ring, 4108);
QXL_ASSERT_OFFSET(struct qxl_ram, cursor_ring, 4640);
QXL_ASSERT_OFFSET(struct qxl_ram, release_ring, 5172);
QXL_ASSERT_OFFSET(struct qxl_ram, update_area, 5256);
QXL_ASSERT_OFFSET(struct qxl_ram, create_surface, 5292);
QXL_ASSERT_OFFSET(struct qxl_ram, monitors_config, 5340);
_Static_assert(sizeof(struct qxl_ram) == 5348, "qxl_ram size");
_Static_assert(sizeof(struct qxl_mode) == 32, "qxl_mode size");
_Static_assert(sizeof(struct qxl_drawable) == 191, "qxl_drawable size");
QXL_ASSERT_OFFSET(struct qxl_drawable, bbox, 31);
QXL_ASSERT_OFFSET(struct qxl_drawable, u, 123);
_Static_assert(sizeof(struct qxl_cursor_cmd) == 150, "qxl_cursor_cmd size");
_Static_assert(sizeof(struct qxl_image_descriptor) == 18, "image descriptor size");
_Static_assert(sizeof(struct qxl_bitmap) == 30, "bitmap size");
_Static_assert(sizeof(struct qxl_data_chunk) == 20, "chunk size");
_Static_assert(sizeof(struct qxl_cursor) == 42, "cursor size");
_Static_assert(sizeof(struct qxl_surface_cmd) == 41, "surface cmd size");
_Static_assert(sizeof(struct qxl_head) == 28, "head size");

#endif
