/* demo: the default guest of `spicevm run` -- a small desktop drawn with the
 * QXL driver: wallpaper, a panel with a ticking clock, windows with text,
 * a log that scrolls with COPY_BITS, an animated area redrawn with
 * DRAW_COPY at 25 frames a second, typed keys in the notes window, the
 * mouse cursor following PS/2 or agent input.  The agent (VDIPort, when
 * present) brings client mouse mode, clipboard text and monitor layouts.
 *
 * It reports what it receives on COM1, one line each, for tests:
 *   demo: ready WxH            demo: key 0xCODE 'c'     demo: text "line"
 *   demo: button N down at X,Y demo: resize WxH        demo: clipboard "text"
 *   demo: fps F.F frames N
 *
 * Command line: width=, height= (default 1024x768), fps= (25).
 */
#include "agent/agent.h"
#include "lib/console.h"
#include <stdarg.h>

#include "lib/cpu.h"
#include "lib/io.h"
#include "lib/multiboot.h"
#include "lib/pit.h"
#include "lib/string.h"
#include "demo.h"
#include "ps2/ps2.h"

#define CURSOR_W 16
#define CURSOR_H 24

static struct agent agent;
static bool have_agent, have_ps2;
static uint32_t fps = 25;
static uint8_t buttons;
static char info[6][96];

/* ------------------------------------------------------------ utilities */

static uint32_t bcd(uint32_t v, bool binary)
{
    return binary ? v : (v & 0x0f) + (v >> 4) * 10;
}

static void rtc_time(uint32_t *h, uint32_t *m, uint32_t *s)
{
    while (cmos_read(0x0a) & 0x80) /* update in progress: a few microseconds */
        ;
    uint8_t b = cmos_read(0x0b);
    bool binary = b & 0x04;
    *s = bcd(cmos_read(0x00), binary);
    *m = bcd(cmos_read(0x02), binary);
    uint32_t hr = cmos_read(0x04);
    bool pm = !(b & 0x02) && (hr & 0x80);
    *h = bcd(hr & 0x7f, binary) % 24;
    if (pm)
        *h = (*h % 12) + 12;
}

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
    char buf[120];
    uint64_t t = pit_uptime_ms() / 1000;
    int n = snprintf(buf, sizeof(buf), "[%02u:%02u] ", (unsigned)(t / 60), (unsigned)(t % 60));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
    va_end(ap);
    text_area_puts(&desk.log_text, buf);
    text_area_newline(&desk.log_text);
}

/* ---------------------------------------------------------------- screen */

static void make_info(void)
{
    snprintf(info[0], sizeof(info[0]), "A whole PC in Python, seen through SPICE.");
    snprintf(info[1], sizeof(info[1]), "QXL revision %u, %u MiB BAR0, %u modes, IRQ %u",
             qxl.revision, qxl.bar0_size >> 20, qxl.n_modes, qxl.irq);
    snprintf(info[2], sizeof(info[2]), "Screen %ux%u, 32-bit xRGB primary surface",
             desk.w, desk.h);
    snprintf(info[3], sizeof(info[3]), "Agent: %s", have_agent ? "VDIPort connected" :
             "none (no VDIPort on this machine)");
    snprintf(info[4], sizeof(info[4]), "Input: %s", have_ps2 ? "PS/2 keyboard and mouse" :
             "no i8042 controller");
    snprintf(info[5], sizeof(info[5]), "Type in Notes; Enter copies the line.");
}

static void set_cursor(void)
{
    static uint32_t argb[CURSOR_W * CURSOR_H];
    art_cursor(argb, CURSOR_W, CURSOR_H);
    qxl_cursor_set_alpha(&qxl, argb, CURSOR_W, CURSOR_H, 0, 0, (int16_t)desk.cursor_x,
                         (int16_t)desk.cursor_y);
}

static void draw_screen(void)
{
    make_info();
    const char *lines[6];
    for (int i = 0; i < 6; i++)
        lines[i] = info[i];
    desktop_draw_all(lines, 6);
    scene_init(desk.video_area.right - desk.video_area.left,
               desk.video_area.bottom - desk.video_area.top);
    uint32_t h, m, s;
    rtc_time(&h, &m, &s);
    desktop_clock(h, m, s);
    desktop_status(have_agent ? "client mouse mode available (agent)" : "server mouse mode");
    text_area_puts(&desk.notes_text, "> ");
    set_cursor();
}

static bool screen_size(uint32_t w, uint32_t h)
{
    w &= ~3u;
    if (w < 640 || h < 480 || (uint64_t)w * h * 4 > qxl.rom->surface0_area_size)
        return false;
    if (qxl_create_primary(&qxl, w, h, QXL_SURF_FMT_32_xRGB, false) != QXL_OK)
        return false;
    desktop_layout(w, h);
    if (desk.cursor_x >= (int32_t)w) desk.cursor_x = w / 2;
    if (desk.cursor_y >= (int32_t)h) desk.cursor_y = h / 2;
    struct qxl_head head = {.id = 0, .surface_id = 0, .width = w, .height = h};
    qxl_monitors_config(&qxl, &head, 1);
    return true;
}

static void resize(uint32_t w, uint32_t h)
{
    if (w == desk.w && h == desk.h)
        return;
    if (!screen_size(w, h)) {
        printf("demo: resize %ux%u refused\n", w, h);
        return;
    }
    printf("demo: resize %ux%u\n", desk.w, desk.h);
    draw_screen();
    log_line("resized to %ux%u", desk.w, desk.h);
}

/* ----------------------------------------------------------------- input */

static void on_client_monitors(struct qxl_device *q, const struct qxl_client_heads *heads)
{
    (void)q;
    if (heads->count >= 1) {
        const struct qxl_urect *r = &heads->heads[0];
        resize(r->right - r->left, r->bottom - r->top);
    }
}

static void move_cursor(int32_t x, int32_t y)
{
    x = x < 0 ? 0 : x >= (int32_t)desk.w ? (int32_t)desk.w - 1 : x;
    y = y < 0 ? 0 : y >= (int32_t)desk.h ? (int32_t)desk.h - 1 : y;
    if (x == desk.cursor_x && y == desk.cursor_y)
        return;
    desk.cursor_x = x;
    desk.cursor_y = y;
    qxl_cursor_move(&qxl, (int16_t)x, (int16_t)y);
}

static void set_buttons(uint8_t now)
{
    for (int b = 0; b < 3; b++) {
        uint8_t bit = 1u << b;
        if ((now ^ buttons) & bit) {
            bool down = now & bit;
            printf("demo: button %d %s at %d,%d\n", b + 1, down ? "down" : "up", desk.cursor_x,
                   desk.cursor_y);
            if (down)
                log_line("button %d at %d,%d", b + 1, desk.cursor_x, desk.cursor_y);
        }
    }
    buttons = now;
}

static void on_key(const struct ps2_key *k)
{
    if (!k->down)
        return;
    printf("demo: key 0x%02x", k->code);
    if (k->ascii >= 32 && k->ascii < 127)
        printf(" '%c'", k->ascii);
    printf("\n");
    struct text_area *t = &desk.notes_text;
    /* the "> " prompt starts a line the user began, not one that wrapped */
    bool prompt = t->len >= 2 && t->buf[0] == '>' && t->buf[1] == ' ';
    if (k->ascii == '\n') {
        const char *line = prompt ? t->buf + 2 : t->buf;
        printf("demo: text \"%s\"\n", line);
        if (have_agent && *line)
            agent_clipboard_set(&agent, line);
        log_line("line: %s", line);
        text_area_newline(t);
        text_area_puts(t, "> ");
    } else if (k->ascii == '\b') {
        if (t->len > (prompt ? 2 : 0))
            text_area_backspace(t);
    } else if (k->ascii >= 32 && k->ascii < 127) {
        text_area_putc(t, k->ascii);
    }
}

static void on_agent_mouse(struct agent *a)
{
    move_cursor((int32_t)a->mouse_x, (int32_t)a->mouse_y);
    /* agent buttons: bit 1 left, 2 middle, 3 right */
    uint8_t b = (uint8_t)(((a->mouse_buttons & VD_AGENT_LBUTTON) ? 1 : 0) |
                          ((a->mouse_buttons & VD_AGENT_RBUTTON) ? 2 : 0) |
                          ((a->mouse_buttons & VD_AGENT_MBUTTON) ? 4 : 0));
    set_buttons(b);
}

static void on_agent_clipboard(struct agent *a)
{
    printf("demo: clipboard \"%s\"\n", a->remote_clipboard);
    log_line("clipboard: %.60s", a->remote_clipboard);
    text_area_puts(&desk.notes_text, a->remote_clipboard);
}

static void on_agent_monitors(struct agent *a)
{
    if (a->n_monitors >= 1)
        resize(a->monitors[0].width, a->monitors[0].height);
}

static void on_agent_display_config(struct agent *a)
{
    log_line("display config flags %u depth %u", a->display_config_flags,
             a->display_config_depth);
}

static void poll_input(void)
{
    struct ps2_key k;
    while (ps2_key_get(&k))
        on_key(&k);
    struct ps2_mouse m;
    while (ps2_mouse_get(&m)) {
        move_cursor(desk.cursor_x + m.dx, desk.cursor_y - m.dy);
        set_buttons(m.buttons);
    }
    if (have_agent)
        agent_poll(&agent);
    qxl_poll_events(&qxl);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    printf("demo: spicevm demo desktop starting\n");
    int rc = qxl_init(&qxl, 0);
    if (rc != QXL_OK) {
        printf("demo: no QXL display: %s\n", qxl_strerror(rc));
        return 1;
    }
    fps = (uint32_t)mb_cmdline_int("fps", 25);
    if (fps < 1 || fps > 60)
        fps = 25;
    uint32_t w = (uint32_t)mb_cmdline_int("width", 1024), h = (uint32_t)mb_cmdline_int("height", 768);
    if (!screen_size(w, h) && !screen_size(1024, 768)) {
        printf("demo: cannot create a %ux%u screen\n", w, h);
        return 1;
    }
    draw_boot_banner(desk.w, desk.h);
    qxl.on_client_monitors = on_client_monitors;
    have_ps2 = ps2_init();
    have_agent = agent_start(&agent);
    if (have_agent) {
        agent.on_mouse = on_agent_mouse;
        agent.on_clipboard = on_agent_clipboard;
        agent.on_monitors = on_agent_monitors;
        agent.on_display_config = on_agent_display_config;
        agent_announce(&agent, true);
    }
    pit_sleep_ms(700);
    desk.cursor_x = desk.w / 2;
    desk.cursor_y = desk.h / 2;
    draw_screen();
    log_line("QXL rev %u ready, %ux%u", qxl.revision, desk.w, desk.h);
    log_line("PS/2 %s, agent %s", have_ps2 ? "up" : "absent", have_agent ? "up" : "absent");
    printf("demo: ready %ux%u\n", desk.w, desk.h);

    uint32_t frame_ms = 1000 / fps;
    uint64_t next_frame = pit_uptime_ms(), next_caret = 0, next_report = pit_uptime_ms() + 10000;
    uint64_t start = pit_uptime_ms();
    uint32_t last_sec = 99, report_frames = 0;
    bool caret = false;
    for (;;) {
        poll_input();
        uint64_t now = pit_uptime_ms();
        if (now >= next_frame) {
            scene_frame((uint32_t)(now - start));
            next_frame += frame_ms;
            if (next_frame < now)
                next_frame = now + frame_ms; /* fell behind: skip, do not burst */
        }
        uint32_t hh, mm, ss;
        rtc_time(&hh, &mm, &ss);
        if (ss != last_sec) {
            last_sec = ss;
            desktop_clock(hh, mm, ss);
            /* a line every few seconds keeps the log scrolling (COPY_BITS) */
            if (ss % 3 == 0)
                log_line("%02u:%02u:%02u  %u frames, %u objects in device memory", hh, mm, ss,
                         scene_frames(), qxl_live_objects(&qxl));
        }
        if (now >= next_caret) {
            caret = !caret;
            text_area_caret(&desk.notes_text, caret);
            next_caret = now + 500;
        }
        if (now >= next_report) {
            uint32_t n = scene_frames() - report_frames;
            report_frames = scene_frames();
            printf("demo: fps %u.%u frames %u\n", n / 10, n % 10, scene_frames());
            next_report += 10000;
        }
        qxl_reclaim(&qxl);
        /* sleep until the next interrupt (timer tick, input, device) */
        cli();
        if (!ps2_pending())
            cpu_idle();
        sti();
    }
}
