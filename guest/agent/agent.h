/* A SPICE guest agent (the vd_agent protocol) over VDIPort.
 *
 * Stream framing: chunks of {port u32, size u32} + bytes; port 1 carries
 * the client's and the agent's VDAgentMessages ({protocol 1, type, opaque
 * u64, size} + data, split over chunks of at most 2048 bytes), port 2 the
 * server's own messages (mouse position in client mouse mode, "client
 * disconnected").
 *
 * What this agent does, as the Linux and Windows agents do:
 *   - announces its capabilities and answers the client's announce;
 *   - MOUSE_STATE: absolute pointer position (client mouse mode) -> on_mouse;
 *   - MONITORS_CONFIG reaching the agent (not taken by the QXL device)
 *     -> on_monitors, answered with REPLY;
 *   - clipboard text both ways (by demand: GRAB, REQUEST, CLIPBOARD);
 *   - DISPLAY_CONFIG -> on_display_config, answered with REPLY.
 * Call agent_poll() whenever the CPU wakes up; it never blocks.
 */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/vdiport.h"

#define VDP_CLIENT_PORT 1
#define VDP_SERVER_PORT 2
#define VD_AGENT_PROTOCOL 1
#define VD_AGENT_MAX_DATA_SIZE 2048

enum vd_agent_type {
    VD_AGENT_MOUSE_STATE = 1,
    VD_AGENT_MONITORS_CONFIG = 2,
    VD_AGENT_REPLY = 3,
    VD_AGENT_CLIPBOARD = 4,
    VD_AGENT_DISPLAY_CONFIG = 5,
    VD_AGENT_ANNOUNCE_CAPABILITIES = 6,
    VD_AGENT_CLIPBOARD_GRAB = 7,
    VD_AGENT_CLIPBOARD_REQUEST = 8,
    VD_AGENT_CLIPBOARD_RELEASE = 9,
    VD_AGENT_CLIENT_DISCONNECTED = 13,
    VD_AGENT_MAX_CLIPBOARD = 14,
    VD_AGENT_END_MESSAGE = 17,
};

enum vd_agent_cap {
    VD_AGENT_CAP_MOUSE_STATE = 0,
    VD_AGENT_CAP_MONITORS_CONFIG = 1,
    VD_AGENT_CAP_REPLY = 2,
    VD_AGENT_CAP_CLIPBOARD = 3,
    VD_AGENT_CAP_DISPLAY_CONFIG = 4,
    VD_AGENT_CAP_CLIPBOARD_BY_DEMAND = 5,
    VD_AGENT_CAP_CLIPBOARD_SELECTION = 6,
    VD_AGENT_CAP_SPARSE_MONITORS_CONFIG = 7,
    VD_AGENT_CAP_GUEST_LINEEND_LF = 8,
    VD_AGENT_CAP_MAX_CLIPBOARD = 10,
};

#define VD_AGENT_CLIPBOARD_UTF8_TEXT 1
#define VD_AGENT_SUCCESS 1
#define VD_AGENT_ERROR 2
#define VD_AGENT_LBUTTON (1u << 1)
#define VD_AGENT_MBUTTON (1u << 2)
#define VD_AGENT_RBUTTON (1u << 3)

struct vd_agent_message {
    uint32_t protocol;
    uint32_t type;
    uint64_t opaque;
    uint32_t size;
} __attribute__((packed));

struct agent_monitor {
    uint32_t height, width, depth;
    int32_t x, y;
} __attribute__((packed));

#define AGENT_MAX_MESSAGE 8192
#define AGENT_CLIPBOARD_MAX 1024
#define AGENT_MAX_MONITORS 16

struct agent {
    struct vdiport port;
    bool present;            /* a VDIPort exists */
    bool connected;          /* CONNECTION read, stream running */
    uint32_t client_caps;    /* first caps word of the client; valid if caps_known */
    bool caps_known;
    uint32_t msgs_in[VD_AGENT_END_MESSAGE + 1];
    uint32_t msgs_out[VD_AGENT_END_MESSAGE + 1];
    uint32_t dropped;        /* malformed or oversized input */

    /* clipboard: what the guest offers, and the last text from the client */
    char clipboard[AGENT_CLIPBOARD_MAX];
    uint32_t clipboard_len;
    char remote_clipboard[AGENT_CLIPBOARD_MAX];
    uint32_t remote_clipboard_len;
    uint32_t remote_clipboard_count;

    /* last values received */
    uint32_t mouse_x, mouse_y, mouse_buttons;
    uint8_t mouse_display;
    uint32_t mouse_count;
    uint32_t display_config_flags, display_config_depth, display_config_count;
    struct agent_monitor monitors[AGENT_MAX_MONITORS];
    uint32_t n_monitors, monitors_count;

    void (*on_mouse)(struct agent *a);
    void (*on_monitors)(struct agent *a);
    void (*on_clipboard)(struct agent *a);   /* remote_clipboard updated */
    void (*on_display_config)(struct agent *a);

    /* receive state */
    uint8_t chunk_hdr[8];
    uint32_t chunk_hdr_len, chunk_port, chunk_left;
    uint8_t msg[2][AGENT_MAX_MESSAGE]; /* per port: message being assembled */
    uint32_t msg_len[2];
    bool msg_skip[2];
};

/* Probe and connect; false if there is no VDIPort (QEMU). */
bool agent_start(struct agent *a);
/* Send our capabilities (request=true asks the client for its own). */
bool agent_announce(struct agent *a, bool request);
/* Process everything the device has; returns the messages handled. */
uint32_t agent_poll(struct agent *a);
/* Sleep (sti; hlt) until `cond` or ms pass, polling the agent each wakeup. */
bool agent_wait(struct agent *a, bool (*cond)(struct agent *a), uint32_t ms);
/* Set the guest clipboard to `text` and tell the client (GRAB). */
bool agent_clipboard_set(struct agent *a, const char *text);
/* Ask the client for its clipboard text (answered through on_clipboard). */
bool agent_clipboard_request(struct agent *a);
/* Send one message on the client port. */
bool agent_send(struct agent *a, uint32_t type, const void *data, uint32_t size);

#endif
