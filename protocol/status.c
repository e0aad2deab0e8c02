/* Names of libpciefw result codes. */
#include "pciefw.h"

const char *pf_strerror(int status)
{
	switch (status) {
	case PF_OK: return "success";
	case PF_AGAIN: return "need more input";
	case PF_EOF: return "end of stream";
	case PF_ERR_TRUNCATED: return "truncated frame or record";
	case PF_ERR_OVERSIZE: return "frame larger than the maximum";
	case PF_ERR_ZERO_LENGTH: return "zero-length frame";
	case PF_ERR_DECODE: return "undecodable message";
	case PF_ERR_INVALID: return "invalid message";
	case PF_ERR_BAD_MAGIC: return "bad magic in hello";
	case PF_ERR_NO_HELLO: return "message before hello";
	case PF_ERR_VERSION: return "incompatible protocol version";
	case PF_ERR_IO: return "I/O error";
	case PF_ERR_CLOSED: return "connection closed by peer";
	case PF_ERR_FORMAT: return "not a pciefw trace file";
	case PF_ERR_CORRUPT: return "corrupt trace file";
	case PF_ERR_NOMEM: return "out of memory";
	case PF_ERR_TIMEOUT: return "timed out";
	case PF_ERR_PEER: return "peer reported an error";
	case PF_ERR_LIMIT: return "message exceeds a protocol limit";
	case PF_ERR_UNKNOWN_TAG: return "completion with an unknown tag";
	case PF_ERR_UNEXPECTED: return "unexpected message";
	default: return "unknown error";
	}
}
