/* PS/2 keyboard and mouse behind the i8042 controller (ports 0x60/0x64,
 * IRQ 1 and IRQ 12).
 *
 * The keyboard runs in scancode set 2 with the controller translating to
 * set 1 (what a PC BIOS sets up); the mouse in stream mode, 3-byte packets,
 * or 4 with the IntelliMouse wheel when the mouse accepts it.  Interrupt
 * handlers put decoded events in small rings; the main flow takes them.
 */
#ifndef PS2_PS2_H
#define PS2_PS2_H

#include <stdbool.h>
#include <stdint.h>

#define PS2_KEY_E0 0x100 /* extended (E0-prefixed) key */

/* a few set-1 codes */
#define PS2_KEY_ESC 0x01
#define PS2_KEY_BACKSPACE 0x0e
#define PS2_KEY_TAB 0x0f
#define PS2_KEY_ENTER 0x1c
#define PS2_KEY_LCTRL 0x1d
#define PS2_KEY_LSHIFT 0x2a
#define PS2_KEY_RSHIFT 0x36
#define PS2_KEY_LALT 0x38
#define PS2_KEY_CAPS 0x3a
#define PS2_KEY_UP (PS2_KEY_E0 | 0x48)
#define PS2_KEY_DOWN (PS2_KEY_E0 | 0x50)
#define PS2_KEY_LEFT (PS2_KEY_E0 | 0x4b)
#define PS2_KEY_RIGHT (PS2_KEY_E0 | 0x4d)

struct ps2_key {
    uint16_t code;  /* set-1 make code, PS2_KEY_E0 for extended keys */
    bool down;
    char ascii;     /* US layout with shift and caps lock; 0 if none */
};

#define PS2_BUTTON_LEFT 1
#define PS2_BUTTON_RIGHT 2
#define PS2_BUTTON_MIDDLE 4

struct ps2_mouse {
    int16_t dx, dy;   /* dy grows upwards, as the mouse reports it */
    int8_t wheel;
    uint8_t buttons;  /* PS2_BUTTON_* held after this packet */
};

struct ps2_stats {
    uint32_t kbd_irqs, mouse_irqs, kbd_bytes, mouse_bytes, dropped, resyncs;
    bool keyboard, mouse, wheel;
};

/* Set up the controller and both devices and register the interrupt
 * handlers.  False when there is no controller; a missing mouse or
 * keyboard only clears its flag in ps2_stats(). */
bool ps2_init(void);
bool ps2_key_get(struct ps2_key *k);
bool ps2_mouse_get(struct ps2_mouse *m);
/* True if an event is waiting (call with interrupts off before sti;hlt). */
bool ps2_pending(void);
/* Keyboard LEDs: bit 0 scroll, 1 num, 2 caps. */
void ps2_set_leds(uint8_t leds);
const struct ps2_stats *ps2_stats(void);

#endif
