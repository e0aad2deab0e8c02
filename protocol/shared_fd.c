/* Memory shared by file descriptor: shared_fd.h, spec 10.2 and 11.1. */
#include "shared_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

const char *pf_shared_fd_refusal(int fd, uint64_t off, uint64_t size,
				 char *why, size_t whylen)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0)
		return strerror(errno);
	if (!S_ISREG(st.st_mode))
		return "not a regular or memory file";
	if (st.st_size < 0 || (uint64_t)st.st_size < off ||
	    (uint64_t)st.st_size - off < size) {
		snprintf(why, whylen, "the file has %lld bytes, the region needs %llu",
			 (long long)st.st_size, (unsigned long long)(off + size));
		return why;
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return "the file is not sealed against shrinking (F_SEAL_SHRINK)";
	return NULL;
}
