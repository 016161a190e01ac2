/* The desktop: wallpaper, top panel with the clock, windows, text areas
 * (the notes window and the log, which scrolls with COPY_BITS). */
#include "lib/alloc.h"
#include "lib/console.h"
#include "lib/string.h"
#include "demo.h"

struct desktop desk;

#define MARGIN 20
#define SHADOW 6

static void fill(const struct qxl_rect *r, uint32_t c)
{
    qxl_fill(&qxl, 0, r, c, QXL_ROPD_OP_PUT);
}

static struct qxl_rect rect(int32_t x, int32_t y, int32_t w, int32_t h)
{
    return qxl_rect_xywh(x, y, w, h);
}

static void place(struct window *win, const char *title, int32_t x, int32_t y, int32_t w,
                  int32_t h, uint32_t body)
{
    win->title = title;
    win->frame = rect(x, y, w, h);
    win->body = (struct qxl_rect){y + BORDER + TITLE_H, x + BORDER, y + h - BORDER,
                                  x + w - BORDER};
    win->body_color = body;
}

void desktop_layout(uint32_t w, uint32_t h)
{
    desk.w = w;
    desk.h = h;
    int32_t top = PANEL_H + MARGIN, bottom = (int32_t)h - MARGIN;
    int32_t left_w = ((int32_t)w - 3 * MARGIN) * 46 / 100;
    int32_t right_x = 2 * MARGIN + left_w, right_w = (int32_t)w - MARGIN - right_x;
    /* the video keeps its 4:3 proportions inside the right column */
    int32_t vw = right_w - 2 * BORDER > 320 ? 320 : (right_w - 2 * BORDER) & ~7;
    int32_t vh = vw * 3 / 4;
    int32_t welcome_h = (bottom - top) * 42 / 100;
    place(&desk.welcome, "Welcome to spicevm", MARGIN, top, left_w, welcome_h, C_BODY);
    place(&desk.notes, "Notes - type here", MARGIN, top + welcome_h + MARGIN, left_w,
          bottom - top - welcome_h - MARGIN, 0xfffdf3);
    place(&desk.video, "Video - DRAW_COPY at 25 fps", right_x, top, vw + 2 * BORDER,
          vh + TITLE_H + 2 * BORDER, 0);
    int32_t log_y = top + vh + TITLE_H + 2 * BORDER + MARGIN;
    place(&desk.log, "System log", right_x, log_y, right_w, bottom - log_y, C_LOG_BODY);
    desk.video_area = desk.video.body;
    desk.clock_box = rect((int32_t)w - 110, 0, 100, PANEL_H);
    desk.status_box = rect(300, 0, (int32_t)w - 430, PANEL_H);
    text_area_init(&desk.notes_text, &desk.notes, C_TEXT, 0xfffdf3);
    text_area_init(&desk.log_text, &desk.log, C_LOG_TEXT, C_LOG_BODY);
}

static void shadow(const struct qxl_rect *f)
{
    /* two translucent black strips, right and below */
    static uint32_t black[SHADOW * 1024];
    struct qxl_rect strips[2] = {
        {f->top + SHADOW, f->right, f->bottom + SHADOW, f->right + SHADOW},
        {f->bottom, f->left + SHADOW, f->bottom + SHADOW, f->right},
    };
    for (int i = 0; i < 2; i++) {
        struct qxl_rect s = strips[i];
        if (s.right > (int32_t)desk.w) s.right = desk.w;
        if (s.bottom > (int32_t)desk.h) s.bottom = desk.h;
        int32_t sw = s.right - s.left, sh = s.bottom - s.top;
        if (sw <= 0 || sh <= 0 || sw * sh > SHADOW * 1024)
            continue;
        struct qxl_image *img = qxl_image_bitmap(&qxl, QXL_BITMAP_32BIT, sw, sh, black, sw * 4,
                                                 0, 0, false);
        struct qxl_rect src = rect(0, 0, sw, sh);
        if (img)
            qxl_alpha_blend(&qxl, 0, &s, img, &src, 90, 0);
        qxl_image_put(img);
    }
}

static void draw_window(const struct window *win)
{
    const struct qxl_rect *f = &win->frame;
    shadow(f);
    fill(f, C_FRAME);
    struct qxl_rect title = {f->top + BORDER, f->left + BORDER, f->top + BORDER + TITLE_H,
                             f->right - BORDER};
    fill(&title, C_TITLE);
    struct qxl_rect accent = {title.top, title.left, title.top + 2, title.right};
    fill(&accent, C_ACCENT);
    /* window buttons: close, minimise, maximise */
    static const uint32_t dots[3] = {0xbf616a, 0xebcb8b, 0xa3be8c};
    for (int i = 0; i < 3; i++) {
        struct qxl_rect d = rect(title.right - 18 - 16 * i, title.top + 9, 10, 10);
        fill(&d, dots[i]);
    }
    qxl_text(&qxl, 0, qxl_font_small, title.left + 10, title.top + 18, win->title, C_TITLE_TEXT,
             -1);
    if (win->body_color)
        fill(&win->body, win->body_color);
}

static void draw_panel(void)
{
    struct qxl_rect p = rect(0, 0, desk.w, PANEL_H);
    fill(&p, C_PANEL);
    struct qxl_rect line = rect(0, PANEL_H - 1, desk.w, 1);
    fill(&line, 0x3b4252);
    struct qxl_rect logo = rect(10, 7, 16, 16);
    fill(&logo, C_ACCENT);
    struct qxl_rect logo2 = rect(14, 11, 8, 8);
    fill(&logo2, 0xebcb8b);
    qxl_text(&qxl, 0, qxl_font_small, 34, 20, "spicevm", C_PANEL_TEXT, -1);
    qxl_text(&qxl, 0, qxl_font_small, 110, 20, "Files   Edit   View   Help", C_PANEL_DIM, -1);
}

void desktop_status(const char *text)
{
    fill(&desk.status_box, C_PANEL);
    struct qxl_rect clip = desk.status_box;
    qxl_set_clip(&qxl, &clip, 1);
    qxl_text(&qxl, 0, qxl_font_small, desk.status_box.left, 20, text, C_PANEL_DIM, -1);
    qxl_clear_clip(&qxl);
}

void desktop_clock(uint32_t hh, uint32_t mm, uint32_t ss)
{
    char s[16];
    snprintf(s, sizeof(s), "%02u:%02u:%02u", hh, mm, ss);
    fill(&desk.clock_box, C_PANEL);
    qxl_text(&qxl, 0, qxl_font_small, desk.clock_box.left + 20, 20, s, C_PANEL_TEXT, -1);
}

void desktop_draw_all(const char *const *welcome_lines, int n_lines)
{
    struct qxl_rect all = rect(0, 0, desk.w, desk.h);
    static uint32_t *tile;
    static uint32_t tile_h;
    if (tile_h != desk.h) {
        free(tile);
        tile = malloc(64 * desk.h * 4);
        tile_h = desk.h;
        if (tile)
            art_wallpaper_tile(tile, 64, desk.h);
    }
    struct qxl_image *wall = tile ? qxl_image_bitmap(&qxl, QXL_BITMAP_32BIT, 64, desk.h, tile,
                                                     64 * 4, 0, 0, true) : 0;
    if (wall)
        qxl_fill_pattern(&qxl, 0, &all, wall, 0, 0, QXL_ROPD_OP_PUT);
    else
        fill(&all, 0x1f5f7a);
    qxl_image_put(wall);
    draw_panel();
    draw_window(&desk.welcome);
    draw_window(&desk.notes);
    draw_window(&desk.video);
    draw_window(&desk.log);
    const struct qxl_rect *b = &desk.welcome.body;
    qxl_text(&qxl, 0, qxl_font_large, b->left + 14, b->top + 32, "Hello from the guest", C_ACCENT,
             -1);
    for (int i = 0; i < n_lines; i++) {
        int32_t y = b->top + 58 + 18 * i;
        if (y > b->bottom - 6)
            break;
        qxl_text(&qxl, 0, qxl_font_small, b->left + 14, y, welcome_lines[i], C_TEXT, -1);
    }
}

void draw_boot_banner(uint32_t w, uint32_t h)
{
    struct qxl_rect all = rect(0, 0, w, h);
    fill(&all, 0x101418);
    struct qxl_rect bar = rect(w / 2 - 120, h / 2 + 20, 240, 4);
    fill(&bar, C_ACCENT);
    const char *t = "spicevm";
    int32_t tw = qxl_font_text_width(qxl_font_large, t, -1);
    qxl_text(&qxl, 0, qxl_font_large, (int32_t)w / 2 - tw / 2, h / 2, t, 0xeceff4, -1);
    const char *s = "QXL driver up - starting the desktop";
    int32_t sw = qxl_font_text_width(qxl_font_small, s, -1);
    qxl_text(&qxl, 0, qxl_font_small, (int32_t)w / 2 - sw / 2, h / 2 + 48, s, 0x9aa3b2, -1);
}

/* ------------------------------------------------------------ text areas */

void text_area_init(struct text_area *t, struct window *w, uint32_t fg, uint32_t bg)
{
    memset(t, 0, sizeof(*t));
    t->win = w;
    t->fg = fg;
    t->bg = bg;
    t->line_h = 17;
    t->pad = 8;
    t->pen_x = w->body.left + t->pad;
}

static int32_t baseline(const struct text_area *t)
{
    return t->win->body.top + t->pad + 12 + t->line * t->line_h;
}

static int32_t lines_fit(const struct text_area *t)
{
    int32_t h = t->win->body.bottom - t->win->body.top - 2 * t->pad;
    return h / t->line_h > 1 ? h / t->line_h : 1;
}

void text_area_caret(struct text_area *t, bool on)
{
    if (t->caret_on == on)
        return;
    t->caret_on = on;
    struct qxl_rect c = rect(t->pen_x + 1, baseline(t) - 12, 2, 15);
    qxl_invers(&qxl, 0, &c);
}

void text_area_newline(struct text_area *t)
{
    bool caret = t->caret_on;
    text_area_caret(t, false);
    t->len = 0;
    t->buf[0] = 0; /* the old line's characters are not this line's */
    t->pen_x = t->win->body.left + t->pad;
    if (t->line + 1 < lines_fit(t)) {
        t->line++;
    } else {
        /* scroll: move every line up by one with COPY_BITS, clear the last */
        const struct qxl_rect *b = &t->win->body;
        int32_t top = b->top + t->pad, used = lines_fit(t) * t->line_h;
        struct qxl_rect dst = {top, b->left, top + used - t->line_h, b->right};
        qxl_copy_bits(&qxl, 0, &dst, b->left, top + t->line_h);
        struct qxl_rect last = {top + used - t->line_h, b->left, top + used, b->right};
        fill(&last, t->bg);
    }
    text_area_caret(t, caret);
}

void text_area_putc(struct text_area *t, char c)
{
    if (c == '\n') {
        text_area_newline(t);
        return;
    }
    const struct qxl_glyph *g = qxl_font_glyph(qxl_font_small, c);
    if (t->pen_x + g->advance > t->win->body.right - t->pad || t->len >= 127)
        text_area_newline(t);
    bool caret = t->caret_on;
    text_area_caret(t, false);
    char s[2] = {c, 0};
    qxl_text(&qxl, 0, qxl_font_small, t->pen_x, baseline(t), s, t->fg, -1);
    t->buf[t->len] = c;
    t->advances[t->len++] = g->advance;
    t->buf[t->len] = 0;
    t->pen_x += g->advance;
    text_area_caret(t, caret);
}

void text_area_puts(struct text_area *t, const char *s)
{
    bool caret = t->caret_on;
    text_area_caret(t, false);
    while (*s) {
        if (*s == '\n') {
            text_area_newline(t);
            s++;
            continue;
        }
        /* what still fits on this line goes out as one TEXT command, the
         * way a driver draws a string (typed keys come one at a time) */
        int32_t x = t->pen_x, start = t->len;
        while (*s && *s != '\n' && t->len < 127) {
            const struct qxl_glyph *g = qxl_font_glyph(qxl_font_small, *s);
            if (t->len > 0 && x + g->advance > t->win->body.right - t->pad)
                break;
            t->buf[t->len] = *s++;
            t->advances[t->len++] = g->advance;
            x += g->advance;
        }
        t->buf[t->len] = 0;
        if (t->len > start)
            qxl_text(&qxl, 0, qxl_font_small, t->pen_x, baseline(t), &t->buf[start], t->fg, -1);
        t->pen_x = x;
        if (*s && *s != '\n')
            text_area_newline(t); /* the line is full */
    }
    text_area_caret(t, caret);
}

void text_area_backspace(struct text_area *t)
{
    if (!t->len)
        return;
    bool caret = t->caret_on;
    text_area_caret(t, false);
    int32_t adv = t->advances[--t->len];
    t->buf[t->len] = 0;
    t->pen_x -= adv;
    struct qxl_rect r = rect(t->pen_x, baseline(t) - 13, adv + 1, t->line_h);
    fill(&r, t->bg);
    text_area_caret(t, caret);
}
