/* PCI set-up on bus 0: BAR sizing and placement, decoding, INTx routing. */
#ifndef PCIINIT_H
#define PCIINIT_H

#include "memmap.h"

#define PCI_IO_WINDOW_START 0xc000u
#define PCI_IO_WINDOW_END 0x10000u

/* Size every BAR, place them (memory top-down in the window below
 * PCI_MEM_WINDOW_END, largest first; I/O upward from 0xc000), enable
 * decoding and bus mastering, route PIRQA-D to IRQ 10, 10, 11, 11 and
 * program each function's interrupt line.  Prints the result. */
void pci_setup(const struct ram_layout *ram);

#endif
