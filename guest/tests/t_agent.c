/* Suite agent: the vd_agent exchange over the VDIPort device. */
#include "suite.h"

static void run_agent(void)
{
    const struct pci_dev *d = pci_find(0x1b36, 0x0105, 0);
    for (int i = 0; i < 4; i++)
        if (!d)
            t_skip("agent: no VDIPort device (1b36:0105) on this machine");
}

const struct suite suite_agent = {"agent", 4, run_agent, "vd_agent over VDIPort"};
