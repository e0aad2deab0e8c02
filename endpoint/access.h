/*
 * The model access contract (access.c): how the framework hands a host's
 * BAR accesses to a model.  The rule itself is stated once, in device.h
 * (struct pf_bar_decl); models never call these.
 */
#ifndef PCIEFW_ACCESS_H
#define PCIEFW_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device.h"

/*
 * Fill in the defaults of @b's access fields and check them; -1 with @err
 * set if the model declared something the contract cannot honour.
 */
int pf_access_normalize(struct pf_bar_decl *b, unsigned index, char *err,
			size_t errlen);
/*
 * A read of @size bytes at @off of @bar, already checked against the BAR
 * (declared, of this kind, inside it; spec 3.3).  Returns the model's
 * status; PF_CPL_DEFER only if the model took the access whole.
 */
int pf_access_read(struct pf_dev *dev, unsigned bar, uint64_t off,
		   uint8_t *data, uint32_t size);
/* Likewise a write; false if it was refused (logged), nothing written. */
bool pf_access_write(struct pf_dev *dev, unsigned bar, uint64_t off,
		     const uint8_t *data, uint32_t size);

#endif /* PCIEFW_ACCESS_H */
