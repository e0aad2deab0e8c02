/* TLS for host connections; see tls.h and docs/protocol.md 1.5. */
#include "tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pciefw.h"

/* The first byte of every TLS connection: a handshake record. */
#define TLS_RECORD_HANDSHAKE 0x16

struct pf_tls {
	gnutls_certificate_credentials_t cred;
	bool verify_peer;
};

struct tls_stream {
	struct pf_stream base;
	struct pf_tls *tls;
	gnutls_session_t session;
	bool checked_first_byte;
	bool handshaking;           /* open() under way */
	bool handshake_writes;      /* ... and it waits for room */
	bool established;           /* handshake done: close_notify is due */
	bool got_data;              /* a record of the session came */
	bool plain;                 /* the host speaks plain text: no TLS */
	/*
	 * A record that could not be sent whole is retried by GnuTLS itself
	 * (it keeps the encrypted record): the next send passes no data.
	 */
	bool send_blocked;
};

static int load_file(char *path, size_t pathlen, const char *dir,
		     const char *name, char *err, size_t errlen)
{
	snprintf(path, pathlen, "%s/%s", dir, name);
	if (access(path, R_OK) == 0)
		return 0;
	snprintf(err, errlen, "--tls-creds: cannot read %s: %s", path,
		 strerror(errno));
	return -1;
}

static void format_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
}

/*
 * Every host would refuse a certificate outside its validity period, each
 * with its own words: refuse to start instead, saying which and when.
 */
static int check_validity(const char *path, char *err, size_t errlen)
{
	gnutls_datum_t pem = { NULL, 0 };
	gnutls_x509_crt_t crt;
	time_t now = time(NULL), from, until;
	char date[64];
	int r;

	if (gnutls_x509_crt_init(&crt) < 0)
		return 0;
	r = gnutls_load_file(path, &pem);
	if (r == 0)
		r = gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM);
	gnutls_free(pem.data);
	if (r < 0) {
		gnutls_x509_crt_deinit(crt);
		snprintf(err, errlen, "--tls-creds: %s: %s", path, gnutls_strerror(r));
		return -1;
	}
	from = gnutls_x509_crt_get_activation_time(crt);
	until = gnutls_x509_crt_get_expiration_time(crt);
	gnutls_x509_crt_deinit(crt);
	if (until != (time_t)-1 && now > until) {
		format_date(until, date, sizeof(date));
		snprintf(err, errlen, "--tls-creds: %s expired on %s", path, date);
		return -1;
	}
	if (from != (time_t)-1 && now < from) {
		format_date(from, date, sizeof(date));
		snprintf(err, errlen, "--tls-creds: %s is not valid before %s",
			 path, date);
		return -1;
	}
	return 0;
}

struct pf_tls *pf_tls_new(const char *dir, bool verify_peer,
			  char *err, size_t errlen)
{
	char cert[4096], key[4096], ca[4096];
	struct pf_tls *tls;
	int r;

	if (load_file(cert, sizeof(cert), dir, "server-cert.pem", err, errlen) ||
	    load_file(key, sizeof(key), dir, "server-key.pem", err, errlen) ||
	    (verify_peer &&
	     load_file(ca, sizeof(ca), dir, "ca-cert.pem", err, errlen)) ||
	    check_validity(cert, err, errlen))
		return NULL;
	tls = calloc(1, sizeof(*tls));
	if (!tls || gnutls_certificate_allocate_credentials(&tls->cred) < 0) {
		snprintf(err, errlen, "--tls-creds: out of memory");
		free(tls);
		return NULL;
	}
	tls->verify_peer = verify_peer;
	r = gnutls_certificate_set_x509_key_file(tls->cred, cert, key,
						 GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		snprintf(err, errlen, "--tls-creds: %s with %s: %s", cert, key,
			 gnutls_strerror(r));
		goto fail;
	}
	if (verify_peer) {
		r = gnutls_certificate_set_x509_trust_file(tls->cred, ca,
							   GNUTLS_X509_FMT_PEM);
		if (r <= 0) {
			snprintf(err, errlen, "--tls-creds: %s: %s", ca,
				 r < 0 ? gnutls_strerror(r) : "no certificate in it");
			goto fail;
		}
	}
	return tls;
fail:
	pf_tls_free(tls);
	return NULL;
}

void pf_tls_free(struct pf_tls *tls)
{
	if (!tls)
		return;
	gnutls_certificate_free_credentials(tls->cred);
	free(tls);
}

static struct tls_stream *tls_of(struct pf_stream *st)
{
	return (struct tls_stream *)st;
}

static ssize_t tls_error(ssize_t r)
{
	if (r == GNUTLS_E_AGAIN)
		errno = EAGAIN;
	else if (r == GNUTLS_E_INTERRUPTED)
		errno = EINTR;
	else
		errno = EPROTO;
	return -1;
}

/*
 * Decrypted input GnuTLS holds is news the socket's readiness does not
 * show: tell the owner ourselves, once it next runs its loop.
 */
static void report_pending(struct tls_stream *t)
{
	struct pf_stream *st = &t->base;

	if (st->want_in && st->loop && !t->plain &&
	    gnutls_record_check_pending(t->session))
		ev_feed_event(st->loop, &st->sock_in, EV_READ);
}

static ssize_t tls_recv(struct pf_stream *st, void *buf, size_t len)
{
	struct tls_stream *t = tls_of(st);
	size_t got = 0;
	ssize_t r;

	if (t->plain)
		return pf_socket_recv(st, buf, len);
	/* Record after record while GnuTLS holds them: no system call. */
	do {
		r = gnutls_record_recv(t->session, (uint8_t *)buf + got, len - got);
		if (r > 0)
			got += (size_t)r;
	} while (r > 0 && got < len && gnutls_record_check_pending(t->session));
	if (got) {
		report_pending(t);
		return (ssize_t)got;
	}
	/* A peer that closes without close_notify has still ended the stream. */
	if (r == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;
	if (r == GNUTLS_E_PULL_ERROR) {
		/*
		 * The socket failed under TLS: say how (errno from recv()).
		 * A host that refused our certificate drops the connection
		 * right after the handshake, often with a reset: that is its
		 * end of the stream, which the server explains as such.
		 */
		if (errno == ECONNRESET && !t->got_data)
			return 0;
		return -1;
	}
	if (r > 0)
		t->got_data = true;
	return r >= 0 ? r : tls_error(r);
}

static ssize_t tls_send(struct pf_stream *st, const void *buf, size_t len)
{
	struct tls_stream *t = tls_of(st);
	ssize_t r;

	if (t->plain)
		return send(st->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (t->send_blocked)
		r = gnutls_record_send(t->session, NULL, 0);
	else
		r = gnutls_record_send(t->session, buf, len);
	t->send_blocked = r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED;
	return r >= 0 ? r : tls_error(r);
}

/*
 * During the handshake the socket is watched as the handshake needs, and
 * the owner, told of it, drives it on (pf_stream_open); after it, as the
 * owner asks, plus what GnuTLS already holds.
 */
static void tls_watch(struct pf_stream *st)
{
	struct tls_stream *t = tls_of(st);
	bool any = st->want_in || st->want_out;

	if (t->handshaking) {
		pf_stream_watch_socket(st, any, any && t->handshake_writes);
		return;
	}
	pf_stream_watch_socket(st, st->want_in, st->want_out);
	report_pending(t);
}

static void tls_free(struct pf_stream *st)
{
	struct tls_stream *t = tls_of(st);

	/*
	 * Best effort close_notify (the socket is non-blocking); never on a
	 * session that was not established: the socket may carry plain text
	 * (a plain-text host reads why it was refused).
	 */
	if (t->established && !t->plain)
		gnutls_bye(t->session, GNUTLS_SHUT_WR);
	gnutls_deinit(t->session);
	free(t);
}

static int tls_open(struct pf_stream *st, char *err, size_t errlen);

static const struct pf_stream_ops tls_ops = {
	.recv = tls_recv,
	.send = tls_send,
	.watch = tls_watch,
	.free = tls_free,
	.open = tls_open,
};

struct pf_stream *pf_tls_stream(struct pf_tls *tls, int fd,
				char *err, size_t errlen)
{
	struct tls_stream *t = calloc(1, sizeof(*t));
	int r;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r = gnutls_init(&t->session, GNUTLS_SERVER | GNUTLS_NONBLOCK);
	if (r == GNUTLS_E_SUCCESS)
		r = gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE,
					   tls->cred);
	if (r == GNUTLS_E_SUCCESS)
		r = gnutls_set_default_priority(t->session);
	if (r != GNUTLS_E_SUCCESS) {
		snprintf(err, errlen, "TLS session: %s", gnutls_strerror(r));
		if (t->session)
			gnutls_deinit(t->session);
		free(t);
		return NULL;
	}
	if (tls->verify_peer) {
		/*
		 * Ask without requiring, and without naming our CA: a host
		 * then sends whatever certificate it has, the handshake
		 * completes, and the refusal can tell it why (verify_peer).
		 */
		gnutls_certificate_server_set_request(t->session,
						      GNUTLS_CERT_REQUEST);
		gnutls_certificate_send_x509_rdn_sequence(t->session, 1);
	}
	gnutls_transport_set_int(t->session, fd);
	pf_stream_init(&t->base, &tls_ops, fd);
	t->tls = tls;
	t->handshaking = true;
	return &t->base;
}

/*
 * A host that speaks the protocol in plain text starts with a frame's
 * length prefix, not a TLS record: say that, rather than what GnuTLS makes
 * of it.
 */
static int check_first_byte(struct tls_stream *t, char *err, size_t errlen)
{
	uint8_t first;
	ssize_t n = recv(t->base.fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return PF_AGAIN;
	if (n <= 0) {
		snprintf(err, errlen, "the host closed the connection before "
			 "the TLS handshake");
		return PF_ERR_CLOSED;
	}
	if (first != TLS_RECORD_HANDSHAKE) {
		snprintf(err, errlen, "the host does not speak TLS (first byte "
			 "0x%02x; this endpoint has --tls-creds: give QEMU's "
			 "device tls-creds=)", first);
		return PF_ERR_NO_HELLO;
	}
	t->checked_first_byte = true;
	return PF_OK;
}

static int verify_peer(struct tls_stream *t, char *err, size_t errlen)
{
	unsigned int status = 0;
	gnutls_datum_t why = { NULL, 0 };
	int r = gnutls_certificate_verify_peers2(t->session, &status);

	if (r == GNUTLS_E_NO_CERTIFICATE_FOUND) {
		snprintf(err, errlen, "the host sent no certificate "
			 "(--tls-verify-peer requires one)");
		return PF_ERR_PEER;
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot verify the host's certificate: %s",
			 gnutls_strerror(r));
		return PF_ERR_INVALID;
	}
	if (!status)
		return PF_OK;
	gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509,
						     &why, 0);
	snprintf(err, errlen, "the host's certificate is not trusted: %s",
		 why.data ? (const char *)why.data : "verification failed");
	gnutls_free(why.data);
	return PF_ERR_PEER;
}

/*
 * Drive the handshake without blocking: PF_OK once it is done (and, when
 * asked, the host's certificate verified), PF_AGAIN with *@want_write
 * telling which readiness it waits for, or an error with @err set to one
 * line that says why: PF_ERR_NO_HELLO when the host speaks the protocol in
 * plain text (its first byte is no TLS record), PF_ERR_PEER when the
 * session is up but the host's certificate is not trusted (both can still
 * be told why), PF_ERR_CLOSED when the host closed, PF_ERR_INVALID for a
 * failed handshake.
 */
static int handshake(struct tls_stream *t, bool *want_write, char *err,
		     size_t errlen)
{
	int r;

	*want_write = false;
	if (!t->checked_first_byte) {
		r = check_first_byte(t, err, errlen);
		if (r != PF_OK)
			return r;
	}
	do {
		r = gnutls_handshake(t->session);
	} while (r == GNUTLS_E_INTERRUPTED);
	if (r == GNUTLS_E_AGAIN) {
		*want_write = gnutls_record_get_direction(t->session) == 1;
		return PF_AGAIN;
	}
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		snprintf(err, errlen, "TLS handshake failed: the host refused it "
			 "(alert: %s)",
			 gnutls_alert_get_name(gnutls_alert_get(t->session)));
		return PF_ERR_INVALID;
	}
	if (r < 0) {
		snprintf(err, errlen, "TLS handshake failed: %s", gnutls_strerror(r));
		return PF_ERR_INVALID;
	}
	t->established = true;
	return t->tls->verify_peer ? verify_peer(t, err, errlen) : PF_OK;
}

/* pf_stream_open() for TLS: the handshake, spec 1.5. */
static int tls_open(struct pf_stream *st, char *err, size_t errlen)
{
	struct tls_stream *t = tls_of(st);
	bool want_write;
	int r = handshake(t, &want_write, err, errlen);

	t->handshaking = r == PF_AGAIN;
	t->handshake_writes = want_write;
	if (r == PF_ERR_NO_HELLO)
		t->plain = true;    /* a plain-text host reads why in plain text */
	else if (r == PF_OK)
		snprintf(err, errlen, "TLS session established");
	tls_watch(st);
	return r;
}
