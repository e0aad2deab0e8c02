/* The list of device models linked into the endpoint. */
#include <string.h>

#include "device.h"

static struct pf_model *models;

/* Keep the list sorted by name so --help output is stable. */
void pf_model_register(struct pf_model *m)
{
	struct pf_model **p = &models;

	while (*p && strcmp((*p)->name, m->name) < 0)
		p = &(*p)->next;
	m->next = *p;
	*p = m;
}

const struct pf_model *pf_model_find(const char *name)
{
	for (const struct pf_model *m = models; m; m = m->next)
		if (!strcmp(m->name, name))
			return m;
	return NULL;
}

const struct pf_model *pf_model_first(void)
{
	return models;
}
