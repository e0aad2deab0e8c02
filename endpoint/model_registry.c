/* The list of device models linked into the endpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"

static struct pf_model *models;

/*
 * The callbacks device.h calls required are called unchecked: a model
 * without one is a programming error, found when the endpoint starts
 * rather than at the guest's first access.
 */
static void check_model(const struct pf_model *m)
{
	const char *missing = NULL;

	if (!m->name || !m->create || !m->ops)
		missing = !m->name ? "name" : !m->create ? "create" : "ops";
	else if (!m->ops->bar_read || !m->ops->bar_write || !m->ops->reset)
		missing = !m->ops->bar_read ? "bar_read" :
			  !m->ops->bar_write ? "bar_write" : "reset";
	if (missing) {
		fprintf(stderr, "device model %s: %s is required (endpoint/device.h)\n",
			m->name ? m->name : "(unnamed)", missing);
		abort();
	}
}

/* Keep the list sorted by name so --help output is stable. */
void pf_model_register(struct pf_model *m)
{
	struct pf_model **p = &models;

	check_model(m);

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
