/* i8042 PS/2 keyboard and mouse driver (see ps2.h). */
#include "ps2/ps2.h"

#include "lib/console.h"
#include "lib/cpu.h"
#include "lib/io.h"
#include "lib/irq.h"
#include "lib/pit.h"

#define DATA 0x60
#define STATUS 0x64
#define COMMAND 0x64
#define ST_OBF 0x01
#define ST_IBF 0x02
#define ST_AUX 0x20
#define CFG_KBD_INT 0x01
#define CFG_AUX_INT 0x02
#define CFG_KBD_OFF 0x10
#define CFG_AUX_OFF 0x20
#define CFG_XLATE 0x40
#define ACK 0xfa
#define RING 64

static struct ps2_key keys[RING];
static struct ps2_mouse moves[RING];
static volatile uint32_t key_head, key_tail, mouse_head, mouse_tail;
static struct ps2_stats st;
static bool e0, shift_l, shift_r, caps;
static uint8_t packet[4];
static unsigned packet_len, packet_size = 3;

/* ------------------------------------------------------------ controller */

static bool wait_write(void)
{
    for (int i = 0; i < 100000; i++)
        if (!(inb(STATUS) & ST_IBF))
            return true;
    return false;
}

/* a byte for the driver (not through an interrupt): poll with a deadline */
static int read_byte(uint32_t ms)
{
    /* timed by PIT channel 2, so it works with interrupts off */
    for (uint32_t i = 0; i < ms * 10; i++) {
        if (inb(STATUS) & ST_OBF)
            return inb(DATA);
        pit_delay_us(100);
    }
    return -1;
}

static void ctl_cmd(uint8_t c)
{
    wait_write();
    outb(COMMAND, c);
}

static void ctl_write(uint8_t c, uint8_t v)
{
    ctl_cmd(c);
    wait_write();
    outb(DATA, v);
}

static void flush(void)
{
    for (int i = 0; i < 64 && (inb(STATUS) & ST_OBF); i++)
        inb(DATA);
}

/* a command to the keyboard (aux=false) or the mouse; returns the ACK */
static int dev_cmd(bool aux, uint8_t c)
{
    if (aux)
        ctl_cmd(0xd4);
    wait_write();
    outb(DATA, c);
    return read_byte(100);
}

/* ---------------------------------------------------------------- decode */

static const char plain[0x3a] = {
    0, 27, '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '-', '=', '\b', '\t',
    'q', 'w', 'e', 'r', 't', 'y', 'u', 'i', 'o', 'p', '[', ']', '\n', 0, 'a', 's',
    'd', 'f', 'g', 'h', 'j', 'k', 'l', ';', '\'', '`', 0, '\\', 'z', 'x', 'c', 'v',
    'b', 'n', 'm', ',', '.', '/', 0, '*', 0, ' '};
static const char shifted[0x3a] = {
    0, 27, '!', '@', '#', '$', '%', '^', '&', '*', '(', ')', '_', '+', '\b', '\t',
    'Q', 'W', 'E', 'R', 'T', 'Y', 'U', 'I', 'O', 'P', '{', '}', '\n', 0, 'A', 'S',
    'D', 'F', 'G', 'H', 'J', 'K', 'L', ':', '"', '~', 0, '|', 'Z', 'X', 'C', 'V',
    'B', 'N', 'M', '<', '>', '?', 0, '*', 0, ' '};

static void key_byte(uint8_t b)
{
    if (b == 0xe0) {
        e0 = true;
        return;
    }
    if (b == 0xe1 || b == 0xfa || b == 0xfe || b == 0x00 || b == 0xff)
        return; /* pause prefix, acks, errors */
    bool down = !(b & 0x80);
    uint16_t code = (b & 0x7f) | (e0 ? PS2_KEY_E0 : 0);
    e0 = false;
    if (code == PS2_KEY_LSHIFT)
        shift_l = down;
    else if (code == PS2_KEY_RSHIFT)
        shift_r = down;
    else if (code == PS2_KEY_CAPS && down)
        caps = !caps;
    char ascii = 0;
    if (!(code & PS2_KEY_E0) && code < sizeof(plain)) {
        bool shift = shift_l || shift_r;
        ascii = shift ? shifted[code] : plain[code];
        if (caps && ascii >= 'a' && ascii <= 'z')
            ascii -= 32;
        else if (caps && ascii >= 'A' && ascii <= 'Z')
            ascii += 32;
    }
    uint32_t next = (key_head + 1) % RING;
    if (next == key_tail) {
        st.dropped++;
        return;
    }
    keys[key_head] = (struct ps2_key){code, down, ascii};
    key_head = next;
}

static void mouse_byte(uint8_t b)
{
    /* the first byte always has bit 3 set: resynchronise on it */
    if (packet_len == 0 && !(b & 0x08)) {
        st.resyncs++;
        return;
    }
    packet[packet_len++] = b;
    if (packet_len < packet_size)
        return;
    packet_len = 0;
    if (packet[0] & 0xc0)
        return; /* overflow: the deltas are meaningless */
    int16_t dx = packet[1] - ((packet[0] & 0x10) ? 256 : 0);
    int16_t dy = packet[2] - ((packet[0] & 0x20) ? 256 : 0);
    int8_t wheel = packet_size == 4 ? (int8_t)(packet[3] << 4) >> 4 : 0;
    uint32_t next = (mouse_head + 1) % RING;
    if (next == mouse_tail) {
        st.dropped++;
        return;
    }
    moves[mouse_head] = (struct ps2_mouse){dx, dy, wheel, packet[0] & 7};
    mouse_head = next;
}

/* both lines: whatever the controller holds goes where its AUX bit says */
static void ps2_irq(unsigned irq, void *ctx)
{
    (void)ctx;
    if (irq == 1)
        st.kbd_irqs++;
    else
        st.mouse_irqs++;
    for (int i = 0; i < 8; i++) {
        uint8_t s = inb(STATUS);
        if (!(s & ST_OBF))
            break;
        uint8_t b = inb(DATA);
        if (s & ST_AUX) {
            st.mouse_bytes++;
            mouse_byte(b);
        } else {
            st.kbd_bytes++;
            key_byte(b);
        }
    }
}

/* ----------------------------------------------------------------- set-up */

static bool mouse_rate(uint8_t rate)
{
    return dev_cmd(true, 0xf3) == ACK && dev_cmd(true, rate) == ACK;
}

bool ps2_init(void)
{
    if (inb(STATUS) == 0xff)
        return false; /* nothing decodes the port */
    ctl_cmd(0xad);    /* both ports off while we set up */
    ctl_cmd(0xa7);
    flush();
    ctl_cmd(0x20);
    int cfg = read_byte(50);
    if (cfg < 0)
        return false;
    cfg &= ~(CFG_KBD_INT | CFG_AUX_INT);
    ctl_write(0x60, (uint8_t)cfg);
    ctl_cmd(0xaa);
    if (read_byte(100) != 0x55)
        return false;
    ctl_write(0x60, (uint8_t)cfg); /* the self-test may reset it */

    ctl_cmd(0xae);
    flush();
    if (dev_cmd(false, 0xff) == ACK && read_byte(500) == 0xaa) {
        st.keyboard = dev_cmd(false, 0xf6) == ACK && dev_cmd(false, 0xf4) == ACK;
    }
    ctl_cmd(0xa8);
    flush();
    if (dev_cmd(true, 0xff) == ACK && read_byte(500) == 0xaa) {
        read_byte(100); /* device id 0 */
        dev_cmd(true, 0xf6);
        /* the IntelliMouse knock: rates 200, 100, 80 turn on the wheel */
        if (mouse_rate(200) && mouse_rate(100) && mouse_rate(80) && dev_cmd(true, 0xf2) == ACK)
            st.wheel = read_byte(100) == 3;
        packet_size = st.wheel ? 4 : 3;
        mouse_rate(100);
        st.mouse = dev_cmd(true, 0xf4) == ACK;
    }
    flush();
    irq_register(1, ps2_irq, 0);
    irq_register(12, ps2_irq, 0);
    cfg = (cfg & ~(CFG_KBD_OFF | CFG_AUX_OFF)) | CFG_XLATE;
    if (st.keyboard)
        cfg |= CFG_KBD_INT;
    if (st.mouse)
        cfg |= CFG_AUX_INT;
    ctl_write(0x60, (uint8_t)cfg);
    return true;
}

bool ps2_key_get(struct ps2_key *k)
{
    uint32_t f = irq_save();
    bool have = key_tail != key_head;
    if (have) {
        *k = keys[key_tail];
        key_tail = (key_tail + 1) % RING;
    }
    irq_restore(f);
    return have;
}

bool ps2_mouse_get(struct ps2_mouse *m)
{
    uint32_t f = irq_save();
    bool have = mouse_tail != mouse_head;
    if (have) {
        *m = moves[mouse_tail];
        mouse_tail = (mouse_tail + 1) % RING;
    }
    irq_restore(f);
    return have;
}

bool ps2_pending(void)
{
    return key_tail != key_head || mouse_tail != mouse_head;
}

void ps2_set_leds(uint8_t leds)
{
    uint32_t f = irq_save();
    /* the ACKs arrive through the interrupt handler and are ignored there */
    wait_write();
    outb(DATA, 0xed);
    wait_write();
    outb(DATA, leds & 7);
    irq_restore(f);
}

const struct ps2_stats *ps2_stats(void)
{
    return &st;
}
