/*
 * libpciefw: constants and status codes shared by every part of pciefw.
 *
 * docs/protocol.md is the specification; section numbers in comments
 * ("spec 3.2") refer to it.
 */
#ifndef PCIEFW_H
#define PCIEFW_H

#include <stddef.h>
#include <stdint.h>

/* Hello.magic: the bytes "PFW!" read as a little-endian word (spec 2). */
#define PCIEFW_MAGIC            0x21574650u
#define PCIEFW_VERSION_MAJOR    1u
#define PCIEFW_VERSION_MINOR    4u

/* Feature bits of Hello.features (spec 2.2). */
#define PCIEFW_FEATURE_MEM_BURST   (1ull << 0) /* MemRead/Write > 8 bytes */
#define PCIEFW_FEATURE_CONFIG_EXT  (1ull << 1) /* config offsets 256..4095 */
/* MemoryMap/BusMaster, UNIX sockets only (spec 10); minor >= 1. */
#define PCIEFW_FEATURE_GUEST_MEMORY (1ull << 2)
/* RingSetup/RingReady, UNIX sockets only (spec 11); minor >= 2. */
#define PCIEFW_FEATURE_SHM_RINGS   (1ull << 3)
/* InterruptConfig, the host's MSI/MSI-X settings (spec 12); minor >= 3. */
#define PCIEFW_FEATURE_INTERRUPT_CONFIG (1ull << 4)
/*
 * Binary register records in the rings (spec 11.7): minor >= 4, and only
 * with PCIEFW_FEATURE_SHM_RINGS.
 */
#define PCIEFW_FEATURE_REG_RECORDS (1ull << 5)
#define PCIEFW_FEATURES_KNOWN \
	(PCIEFW_FEATURE_MEM_BURST | PCIEFW_FEATURE_CONFIG_EXT | \
	 PCIEFW_FEATURE_GUEST_MEMORY | PCIEFW_FEATURE_SHM_RINGS | \
	 PCIEFW_FEATURE_INTERRUPT_CONFIG | PCIEFW_FEATURE_REG_RECORDS)
/*
 * Features pf_hello_defaults() offers: guest memory needs a UNIX socket
 * and code that passes fds, so a side offers it explicitly (spec 10.1).
 */
#define PCIEFW_FEATURES_DEFAULT \
	(PCIEFW_FEATURE_MEM_BURST | PCIEFW_FEATURE_CONFIG_EXT)

/* Limits (spec 1.3). */
#define PCIEFW_MIN_PAYLOAD       8u
#define PCIEFW_DEFAULT_PAYLOAD   (64u * 1024)
#define PCIEFW_MAX_PAYLOAD       (1024u * 1024)
/* Room for a message's fields around its largest data field. */
#define PCIEFW_FRAME_OVERHEAD    64u
#define PCIEFW_MAX_FRAME(payload) ((size_t)(payload) + PCIEFW_FRAME_OVERHEAD)
/* A Hello or DeviceDescription must fit in this before negotiation. */
#define PCIEFW_HANDSHAKE_FRAME   4096u
#define PCIEFW_MAX_NAME          64u
#define PCIEFW_MAX_TEXT          1024u
#define PCIEFW_CONFIG_SPACE      4096u
/* Config offsets the host forwards (spec 4.1): [START, END) and ext. */
#define PCIEFW_CONFIG_DEV_START     0x40u
#define PCIEFW_CONFIG_DEV_END       0x80u
#define PCIEFW_CONFIG_EXT_START     0x100u
#define PCIEFW_NUM_BARS          6u
#define PCIEFW_MAX_MSI_VECTORS   32u
#define PCIEFW_MAX_MSIX_VECTORS  2048u
/* InterruptConfig (spec 12.5): entries per message. */
#define PCIEFW_MAX_MSIX_ENTRIES  64u
/* Guest memory sharing (spec 10.2). */
#define PCIEFW_MAX_MEM_REGIONS   32u
#define PCIEFW_MAX_PENDING_FDS   64u
#define PCIEFW_MEM_ALIGN         4096u
/* The shared-memory transport (spec 11.1): region fd and two doorbells. */
#define PCIEFW_RING_SETUP_FDS    3u

/*
 * Result codes of libpciefw calls: 0 or a positive count on success,
 * a negative PF_ERR_* on failure.  pf_strerror() names them.
 */
enum pf_status {
	PF_OK = 0,
	PF_AGAIN = 1,            /* need more input; not an error */
	PF_EOF = 2,              /* clean end of stream/file */
	PF_ERR_TRUNCATED = -1,   /* stream ended inside a frame/record */
	PF_ERR_OVERSIZE = -2,    /* frame longer than the negotiated maximum */
	PF_ERR_ZERO_LENGTH = -3, /* frame with a zero length prefix */
	PF_ERR_DECODE = -4,      /* frame bytes are not a valid Message */
	PF_ERR_INVALID = -5,     /* decodes, but breaks a rule of the spec */
	PF_ERR_BAD_MAGIC = -6,   /* first message is a Hello with wrong magic */
	PF_ERR_NO_HELLO = -7,    /* first message is not a Hello */
	PF_ERR_VERSION = -8,     /* incompatible major version */
	PF_ERR_IO = -9,          /* system call failed, see errno */
	PF_ERR_CLOSED = -10,     /* peer closed the connection */
	PF_ERR_FORMAT = -11,     /* file is not a pciefw trace */
	PF_ERR_CORRUPT = -12,    /* trace file damaged */
	PF_ERR_NOMEM = -13,
	PF_ERR_TIMEOUT = -14,
	PF_ERR_PEER = -15,       /* peer sent Error or Goodbye */
	PF_ERR_LIMIT = -16,      /* decodes, but exceeds a limit of spec 1.3 */
	PF_ERR_UNKNOWN_TAG = -17, /* completion for no outstanding request */
	PF_ERR_UNEXPECTED = -18, /* message not allowed in this state/direction */
};

const char *pf_strerror(int status);

#endif /* PCIEFW_H */
