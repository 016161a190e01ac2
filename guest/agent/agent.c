/* The vd_agent protocol over VDIPort (see agent.h). */
#include "agent/agent.h"

#include "lib/console.h"
#include "lib/cpu.h"
#include "lib/pit.h"
#include "lib/string.h"

#define SEND_TIMEOUT_MS 2000

static const uint32_t our_caps = (1u << VD_AGENT_CAP_MOUSE_STATE) |
                                 (1u << VD_AGENT_CAP_MONITORS_CONFIG) |
                                 (1u << VD_AGENT_CAP_REPLY) | (1u << VD_AGENT_CAP_CLIPBOARD) |
                                 (1u << VD_AGENT_CAP_DISPLAY_CONFIG) |
                                 (1u << VD_AGENT_CAP_CLIPBOARD_BY_DEMAND) |
                                 (1u << VD_AGENT_CAP_SPARSE_MONITORS_CONFIG) |
                                 (1u << VD_AGENT_CAP_GUEST_LINEEND_LF);

bool agent_start(struct agent *a)
{
    memset(a, 0, sizeof(*a));
    a->present = vdiport_probe(&a->port);
    if (!a->present)
        return false;
    a->connected = vdiport_connect(&a->port) != 0;
    return a->connected;
}

bool agent_send(struct agent *a, uint32_t type, const void *data, uint32_t size)
{
    if (!a->connected)
        return false;
    struct vd_agent_message m = {VD_AGENT_PROTOCOL, type, 0, size};
    /* message = header + data, cut into chunks of at most 2048 bytes */
    static uint8_t buf[sizeof(m) + AGENT_MAX_MESSAGE];
    if (size > AGENT_MAX_MESSAGE)
        return false;
    memcpy(buf, &m, sizeof(m));
    memcpy(buf + sizeof(m), data, size);
    uint32_t total = sizeof(m) + size, off = 0;
    while (off < total) {
        uint32_t n = total - off < VD_AGENT_MAX_DATA_SIZE ? total - off : VD_AGENT_MAX_DATA_SIZE;
        uint32_t hdr[2] = {VDP_CLIENT_PORT, n};
        if (!vdiport_write(&a->port, hdr, sizeof(hdr), SEND_TIMEOUT_MS) ||
            !vdiport_write(&a->port, buf + off, n, SEND_TIMEOUT_MS))
            return false;
        off += n;
    }
    if (type <= VD_AGENT_END_MESSAGE)
        a->msgs_out[type]++;
    return true;
}

bool agent_announce(struct agent *a, bool request)
{
    uint32_t body[2] = {request ? 1u : 0u, our_caps};
    return agent_send(a, VD_AGENT_ANNOUNCE_CAPABILITIES, body, sizeof(body));
}

static bool reply(struct agent *a, uint32_t type, uint32_t error)
{
    uint32_t body[2] = {type, error};
    return agent_send(a, VD_AGENT_REPLY, body, sizeof(body));
}

bool agent_clipboard_set(struct agent *a, const char *text)
{
    a->clipboard_len = strnlen(text, AGENT_CLIPBOARD_MAX - 1);
    memcpy(a->clipboard, text, a->clipboard_len);
    a->clipboard[a->clipboard_len] = 0;
    uint32_t types[1] = {VD_AGENT_CLIPBOARD_UTF8_TEXT};
    return agent_send(a, VD_AGENT_CLIPBOARD_GRAB, types, sizeof(types));
}

bool agent_clipboard_request(struct agent *a)
{
    uint32_t type = VD_AGENT_CLIPBOARD_UTF8_TEXT;
    return agent_send(a, VD_AGENT_CLIPBOARD_REQUEST, &type, sizeof(type));
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* One complete message from `port`. */
static void handle(struct agent *a, uint32_t port, const uint8_t *msg, uint32_t len)
{
    struct vd_agent_message h;
    memcpy(&h, msg, sizeof(h));
    const uint8_t *d = msg + sizeof(h);
    uint32_t n = h.size;
    if (h.protocol != VD_AGENT_PROTOCOL || sizeof(h) + n != len) {
        a->dropped++;
        return;
    }
    if (h.type <= VD_AGENT_END_MESSAGE)
        a->msgs_in[h.type]++;
    switch (h.type) {
    case VD_AGENT_MOUSE_STATE:
        if (n < 13)
            break;
        a->mouse_x = rd32(d);
        a->mouse_y = rd32(d + 4);
        a->mouse_buttons = rd32(d + 8);
        a->mouse_display = d[12];
        a->mouse_count++;
        if (a->on_mouse)
            a->on_mouse(a);
        break;
    case VD_AGENT_ANNOUNCE_CAPABILITIES:
        if (n < 8)
            break;
        a->client_caps = rd32(d + 4);
        a->caps_known = true;
        if (rd32(d))
            agent_announce(a, false);
        break;
    case VD_AGENT_MONITORS_CONFIG: {
        if (n < 8)
            break;
        uint32_t count = rd32(d);
        if (count > AGENT_MAX_MONITORS || 8 + count * sizeof(struct agent_monitor) > n) {
            reply(a, VD_AGENT_MONITORS_CONFIG, VD_AGENT_ERROR);
            break;
        }
        memcpy(a->monitors, d + 8, count * sizeof(struct agent_monitor));
        a->n_monitors = count;
        a->monitors_count++;
        if (a->on_monitors)
            a->on_monitors(a);
        reply(a, VD_AGENT_MONITORS_CONFIG, VD_AGENT_SUCCESS);
        break;
    }
    case VD_AGENT_DISPLAY_CONFIG:
        if (n < 8)
            break;
        a->display_config_flags = rd32(d);
        a->display_config_depth = rd32(d + 4);
        a->display_config_count++;
        if (a->on_display_config)
            a->on_display_config(a);
        reply(a, VD_AGENT_DISPLAY_CONFIG, VD_AGENT_SUCCESS);
        break;
    case VD_AGENT_CLIPBOARD_GRAB:
        /* the client has new clipboard contents: fetch text if offered */
        for (uint32_t i = 0; i + 4 <= n; i += 4)
            if (rd32(d + i) == VD_AGENT_CLIPBOARD_UTF8_TEXT) {
                agent_clipboard_request(a);
                break;
            }
        break;
    case VD_AGENT_CLIPBOARD_REQUEST:
        if (n >= 4 && rd32(d) == VD_AGENT_CLIPBOARD_UTF8_TEXT) {
            static uint8_t out[4 + AGENT_CLIPBOARD_MAX];
            uint32_t type = VD_AGENT_CLIPBOARD_UTF8_TEXT;
            memcpy(out, &type, 4);
            memcpy(out + 4, a->clipboard, a->clipboard_len);
            agent_send(a, VD_AGENT_CLIPBOARD, out, 4 + a->clipboard_len);
        }
        break;
    case VD_AGENT_CLIPBOARD:
        if (n >= 4 && rd32(d) == VD_AGENT_CLIPBOARD_UTF8_TEXT) {
            uint32_t tl = n - 4 < AGENT_CLIPBOARD_MAX - 1 ? n - 4 : AGENT_CLIPBOARD_MAX - 1;
            memcpy(a->remote_clipboard, d + 4, tl);
            a->remote_clipboard[tl] = 0;
            a->remote_clipboard_len = tl;
            a->remote_clipboard_count++;
            if (a->on_clipboard)
                a->on_clipboard(a);
        }
        break;
    case VD_AGENT_CLIENT_DISCONNECTED:
        a->caps_known = false;
        a->client_caps = 0;
        break;
    default:
        break;
    }
    (void)port;
}

/* Feed stream bytes through the chunk and message framing. */
static uint32_t consume(struct agent *a, const uint8_t *p, uint32_t len)
{
    uint32_t handled = 0;
    while (len) {
        if (!a->chunk_left) {
            uint32_t need = 8 - a->chunk_hdr_len;
            uint32_t n = len < need ? len : need;
            memcpy(a->chunk_hdr + a->chunk_hdr_len, p, n);
            a->chunk_hdr_len += n;
            p += n;
            len -= n;
            if (a->chunk_hdr_len < 8)
                break;
            a->chunk_hdr_len = 0;
            a->chunk_port = rd32(a->chunk_hdr);
            a->chunk_left = rd32(a->chunk_hdr + 4);
            if (a->chunk_port != VDP_CLIENT_PORT && a->chunk_port != VDP_SERVER_PORT)
                a->dropped++;
            continue;
        }
        uint32_t n = len < a->chunk_left ? len : a->chunk_left;
        uint32_t port = a->chunk_port;
        a->chunk_left -= n;
        if (port == VDP_CLIENT_PORT || port == VDP_SERVER_PORT) {
            int k = port == VDP_SERVER_PORT;
            for (uint32_t i = 0; i < n; i++) {
                if (a->msg_len[k] < AGENT_MAX_MESSAGE)
                    a->msg[k][a->msg_len[k]] = p[i];
                else
                    a->msg_skip[k] = true;
                a->msg_len[k]++;
                if (a->msg_len[k] >= sizeof(struct vd_agent_message)) {
                    uint32_t size = rd32(a->msg[k] + 16);
                    if (a->msg_len[k] == sizeof(struct vd_agent_message) + size) {
                        if (a->msg_skip[k])
                            a->dropped++;
                        else
                            handle(a, port, a->msg[k], a->msg_len[k]);
                        handled++;
                        a->msg_len[k] = 0;
                        a->msg_skip[k] = false;
                    }
                }
            }
        }
        p += n;
        len -= n;
    }
    return handled;
}

uint32_t agent_poll(struct agent *a)
{
    if (!a->connected)
        return 0;
    uint8_t buf[512];
    uint32_t handled = 0, n;
    while ((n = vdiport_read(&a->port, buf, sizeof(buf))) > 0)
        handled += consume(a, buf, n);
    vdiport_readable(&a->port); /* arm the interrupt for what comes next */
    while ((n = vdiport_read(&a->port, buf, sizeof(buf))) > 0)
        handled += consume(a, buf, n);
    return handled;
}

bool agent_wait(struct agent *a, bool (*cond)(struct agent *a), uint32_t ms)
{
    if (!pit_hz())
        pit_init(100);
    uint64_t deadline = pit_uptime_ms() + ms;
    for (;;) {
        agent_poll(a);
        if (cond(a))
            return true;
        if (pit_uptime_ms() >= deadline)
            return false;
        uint32_t flags = irq_save();
        if (!vdiport_readable(&a->port))
            cpu_idle();
        irq_restore(flags);
    }
}
