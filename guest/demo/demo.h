/* The demo desktop: shared state and the pieces main.c ties together. */
#ifndef DEMO_DEMO_H
#define DEMO_DEMO_H

#include <stdbool.h>
#include <stdint.h>

#include "qxl/qxl_draw.h"

/* palette */
#define C_PANEL 0x1f2329
#define C_PANEL_TEXT 0xe5e9f0
#define C_PANEL_DIM 0x9aa3b2
#define C_FRAME 0x3b4252
#define C_TITLE 0x2e3440
#define C_TITLE_TEXT 0xeceff4
#define C_BODY 0xf2f4f8
#define C_TEXT 0x2e3440
#define C_ACCENT 0x5e81ac
#define C_LOG_BODY 0x1b1f27
#define C_LOG_TEXT 0xa3be8c

#define PANEL_H 30
#define TITLE_H 26
#define BORDER 1

struct window {
    const char *title;
    struct qxl_rect frame; /* outer box, border included */
    struct qxl_rect body;  /* inside, below the title bar */
    uint32_t body_color;
};

/* a text area inside a window body: lines of the small font */
struct text_area {
    struct window *win;
    uint32_t fg, bg;
    int32_t line_h, pad;
    int32_t line;          /* current line index */
    int32_t pen_x;         /* pen position in the current line */
    char buf[128];         /* characters of the current line */
    int32_t len;
    int32_t advances[128]; /* pen advance of each character (for backspace) */
    bool caret_on;
};

struct desktop {
    uint32_t w, h;
    struct window welcome, notes, video, log;
    struct text_area notes_text, log_text;
    struct qxl_rect clock_box, status_box;
    struct qxl_rect video_area; /* where frames go */
    int32_t cursor_x, cursor_y;
};

extern struct desktop desk;

/* desktop.c */
void desktop_layout(uint32_t w, uint32_t h);
void desktop_draw_all(const char *const *welcome_lines, int n_lines);
void desktop_clock(uint32_t hh, uint32_t mm, uint32_t ss);
void desktop_status(const char *text);
void text_area_init(struct text_area *t, struct window *w, uint32_t fg, uint32_t bg);
void text_area_putc(struct text_area *t, char c);
void text_area_puts(struct text_area *t, const char *s);
void text_area_backspace(struct text_area *t);
void text_area_newline(struct text_area *t);
void text_area_caret(struct text_area *t, bool on);
void draw_boot_banner(uint32_t w, uint32_t h);

/* scene.c: the animated "video" area */
void scene_init(uint32_t w, uint32_t h);
void scene_frame(uint32_t t_ms);
uint32_t scene_frames(void);

/* art.c */
void art_cursor(uint32_t *argb, int w, int h);
void art_wallpaper_tile(uint32_t *px, int w, int h);
void art_landscape(uint32_t *px, int w, int h);

#endif
