/* A sample of every message kind with boundary values, for codec tests. */
#ifndef PCIEFW_TEST_MSGS_H
#define PCIEFW_TEST_MSGS_H

#include "buf.h"

/* Append one framed sample of every message kind (several per kind) to @b;
 * returns how many frames were appended. */
int sample_stream(struct pf_buf *b);

#endif
