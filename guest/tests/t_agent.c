/* Suite agent: the vd_agent exchange over the VDIPort device with a client
 * on the far side (spicevm test-guest connects a scripted one; see
 * vm/agentpeer.py for its script).  QEMU has no VDIPort: every test skips. */
#include "agent/agent.h"
#include "lib/io.h"
#include "lib/string.h"
#include "suite.h"

#define N_TESTS 7
#define WAIT_MS 10000

static struct agent ag;

static bool caps_known(struct agent *a) { return a->caps_known; }
static bool display_config_seen(struct agent *a) { return a->display_config_count > 0; }
static bool mouse_seen(struct agent *a) { return a->mouse_count > 0; }
static bool clipboard_back(struct agent *a) { return a->remote_clipboard_count > 0; }

static uint32_t monitors_seen_before;
static bool client_monitors_seen(struct agent *a)
{
    (void)a;
    return qxl.client_monitors_count != monitors_seen_before;
}

static void run_agent(void)
{
    if (!vdiport_probe(&ag.port)) {
        for (int i = 0; i < N_TESTS; i++)
            t_skip("agent: no VDIPort device (1b36:0105) on this machine");
        return;
    }
    /* the QXL device must take client monitor configs (int_mask bit 5) */
    if (!t_ready())
        return;
    monitors_seen_before = qxl.client_monitors_count;
    bool started = agent_start(&ag);
    t_ok(started && ag.port.ram->magic == VDIPORT_MAGIC && ag.port.generation != 0,
         "agent: VDIPort found (irq %u), magic VDIP, CONNECTION started generation %u",
         ag.port.irq, ag.port.generation);
    if (!started)
        return;
    t_ok(inl(ag.port.io + VDIPORT_IO_CONNECTION) == 0,
         "agent: a second CONNECTION read while connected returns 0");

    bool sent = agent_announce(&ag, true);
    bool caps = sent && agent_wait(&ag, caps_known, WAIT_MS);
    t_ok(caps && (ag.client_caps & (1u << VD_AGENT_CAP_CLIPBOARD_BY_DEMAND)),
         "agent: capabilities announced; the client answered with %08x", ag.client_caps);

    bool dc = agent_wait(&ag, display_config_seen, WAIT_MS);
    t_ok(dc && ag.display_config_flags == 5 && ag.display_config_depth == 32 &&
             ag.msgs_out[VD_AGENT_REPLY] > 0,
         "agent: DISPLAY_CONFIG (flags %u, depth %u) received and acknowledged with REPLY",
         ag.display_config_flags, ag.display_config_depth);

    bool mc = agent_wait(&ag, client_monitors_seen, WAIT_MS);
    struct qxl_client_heads heads = {0};
    bool rom = mc && qxl_client_monitors(&qxl, &heads);
    if (!mc)
        diag("agent: no CLIENT_MONITORS_CONFIG interrupt; the agent itself got %u configs",
             ag.monitors_count);
    t_ok(rom && heads.count == 1 && heads.heads[0].right - heads.heads[0].left == 800 &&
             heads.heads[0].bottom - heads.heads[0].top == 600,
         "agent: the client's MONITORS_CONFIG reaches the QXL ROM (%u head, %ux%u, "
         "CLIENT_MONITORS_CONFIG)", heads.count,
         heads.count ? heads.heads[0].right - heads.heads[0].left : 0,
         heads.count ? heads.heads[0].bottom - heads.heads[0].top : 0);

    bool mouse = agent_wait(&ag, mouse_seen, WAIT_MS);
    t_ok(mouse && ag.mouse_x == 123 && ag.mouse_y == 45 &&
             (ag.mouse_buttons & VD_AGENT_LBUTTON),
         "agent: client mouse mode: MOUSE_STATE (%u, %u) buttons %x display %u", ag.mouse_x,
         ag.mouse_y, ag.mouse_buttons, ag.mouse_display);

    const char *text = "spicevm guest clipboard 42";
    bool grabbed = agent_clipboard_set(&ag, text);
    bool back = grabbed && agent_wait(&ag, clipboard_back, WAIT_MS);
    t_ok(back && !strcmp(ag.remote_clipboard, "peer saw: spicevm guest clipboard 42"),
         "agent: clipboard text guest -> client -> guest (\"%s\")", ag.remote_clipboard);
    diag("agent: %u bytes in, %u out, %u stale packets, %u dropped, %u interrupts",
         ag.port.bytes_in, ag.port.bytes_out, ag.port.stale_packets, ag.dropped, ag.port.irqs);
}

const struct suite suite_agent = {"agent", N_TESTS, run_agent, "vd_agent over VDIPort"};
