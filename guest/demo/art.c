/* Procedural artwork for the demo: the cursor, the wallpaper tile and the
 * "photo" behind the animation.  Integer arithmetic only (the guest is
 * built without floating point). */
#include "demo.h"

/* sin(deg) * 1024, Bhaskara I's approximation (error < 0.2%) */
static int32_t isin(int32_t deg)
{
    deg %= 360;
    if (deg < 0)
        deg += 360;
    int32_t sign = 1;
    if (deg >= 180) {
        deg -= 180;
        sign = -1;
    }
    int32_t p = deg * (180 - deg);
    return sign * (4 * p * 1024) / (40500 - p);
}

static uint32_t hash(uint32_t x, uint32_t y)
{
    uint32_t h = x * 374761393u + y * 668265263u;
    h = (h ^ (h >> 13)) * 1274126177u;
    return h ^ (h >> 16);
}

static uint32_t rgb(int32_t r, int32_t g, int32_t b)
{
    r = r < 0 ? 0 : r > 255 ? 255 : r;
    g = g < 0 ? 0 : g > 255 ? 255 : g;
    b = b < 0 ? 0 : b > 255 ? 255 : b;
    return ((uint32_t)r << 16) | ((uint32_t)g << 8) | (uint32_t)b;
}

/* a + (b - a) * t / n per channel */
static uint32_t mix(uint32_t a, uint32_t b, int32_t t, int32_t n)
{
    int32_t ar = (a >> 16) & 0xff, ag = (a >> 8) & 0xff, ab = a & 0xff;
    int32_t br = (b >> 16) & 0xff, bg = (b >> 8) & 0xff, bb = b & 0xff;
    return rgb(ar + (br - ar) * t / n, ag + (bg - ag) * t / n, ab + (bb - ab) * t / n);
}

static uint32_t shade(uint32_t c, int32_t d)
{
    return rgb(((c >> 16) & 0xff) + d, ((c >> 8) & 0xff) + d, (c & 0xff) + d);
}

/* the classic arrow, outlined black, filled white */
void art_cursor(uint32_t *argb, int w, int h)
{
    static const int32_t poly[][2] = {{0, 0}, {0, 17}, {4, 13}, {7, 20}, {10, 19},
                                      {7, 12}, {12, 12}};
    const int n = sizeof(poly) / sizeof(poly[0]);
    static uint8_t inside[32 * 32];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            /* even-odd rule at the pixel centre, in half-pixel units */
            int32_t px = 2 * x + 1, py = 2 * y + 1;
            bool in = false;
            for (int i = 0, j = n - 1; i < n; j = i++) {
                int32_t xi = 2 * poly[i][0], yi = 2 * poly[i][1];
                int32_t xj = 2 * poly[j][0], yj = 2 * poly[j][1];
                if ((yi > py) != (yj > py) &&
                    (px * (yj - yi) < xi * (yj - yi) + (py - yi) * (xj - xi)) == (yj > yi))
                    in = !in;
            }
            inside[y * w + x] = in;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t v = 0;
            if (inside[y * w + x]) {
                bool edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 ||
                            !inside[y * w + x - 1] || !inside[y * w + x + 1] ||
                            !inside[(y - 1) * w + x] || !inside[(y + 1) * w + x];
                v = edge ? 0xff000000u : 0xffffffffu;
            }
            argb[y * w + x] = v;
        }
}

/* 64 x h: a vertical gradient with faint diagonal bands and dither */
void art_wallpaper_tile(uint32_t *px, int w, int h)
{
    const uint32_t top = 0x14304f, mid = 0x1f5f7a, bottom = 0x3a8f86;
    for (int y = 0; y < h; y++) {
        uint32_t base = y < h / 2 ? mix(top, mid, y, h / 2) : mix(mid, bottom, y - h / 2, h - h / 2);
        for (int x = 0; x < w; x++) {
            int32_t band = ((x + y) & 31) < 16 ? 3 : -3;
            int32_t dither = (int32_t)(hash(x, y) & 3) - 1;
            px[y * w + x] = shade(base, band + dither);
        }
    }
}

/* a sunset over hills and a lake */
void art_landscape(uint32_t *px, int w, int h)
{
    int32_t horizon = h * 58 / 100, lake = h * 76 / 100;
    int32_t sun_x = w * 70 / 100, sun_y = h * 40 / 100, sun_r = h / 9;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int32_t sy = y < lake ? y : 2 * lake - y; /* mirrored in the lake */
            uint32_t c = sy < horizon ? mix(0x1b2550, 0xf0a060, sy, horizon)
                                      : mix(0xf0a060, 0xffd8a0, sy - horizon, h - horizon);
            int32_t dx = x - sun_x, dy = sy - sun_y, d2 = dx * dx + dy * dy;
            if (d2 < sun_r * sun_r)
                c = 0xfff0b0;
            else if (d2 < 9 * sun_r * sun_r)
                c = mix(0xffe0a0, c, d2 - sun_r * sun_r, 8 * sun_r * sun_r);
            int32_t far = horizon - h / 10 + (isin(x * 2) * (h / 14) + isin(x * 5 + 60) * (h / 40)) / 1024;
            int32_t near = horizon + h / 30 + (isin(x * 3 + 140) * (h / 18) + isin(x * 11) * (h / 70)) / 1024;
            if (sy >= far)
                c = mix(0x5a4a80, c, 1, 4);
            if (sy >= near)
                c = shade(0x2b3f3a, (int32_t)(hash(x, sy) & 7) - 3 - (sy - near) / 4);
            if (y >= lake) {
                /* the reflection: darker, with ripples */
                int32_t ripple = (isin(y * 40 + x * 3) >> 8) + (int32_t)(hash(x / 3, y) & 7);
                c = shade(mix(c, 0x1a3048, 2, 5), ripple - 6);
            }
            px[y * w + x] = c;
        }
}
