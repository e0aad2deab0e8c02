/*
 * The one rule for memory shared with a peer by file descriptor (guest
 * RAM, docs/protocol.md 10.2; the rings' region, 11.1): a peer that could
 * shrink the file under a mapping would make the other side's next access
 * to it fault (SIGBUS).  The host checks it before it offers an fd, the
 * endpoint before it maps one.
 */
#ifndef PCIEFW_SHARED_FD_H
#define PCIEFW_SHARED_FD_H

#include <stddef.h>
#include <stdint.h>

/*
 * Why @fd cannot back [off, off + size) safely, or NULL: it must be a
 * regular or memory file at least that long, sealed against shrinking
 * (F_SEAL_SHRINK).  @why is scratch for the text.
 */
const char *pf_shared_fd_refusal(int fd, uint64_t off, uint64_t size,
				 char *why, size_t whylen);

#endif /* PCIEFW_SHARED_FD_H */
