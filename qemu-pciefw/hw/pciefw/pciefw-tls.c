/*
 * pciefw: TLS over the connection's socket (docs/protocol.md 1.5), through
 * QEMU's QCryptoTLSSession and a tls-creds-x509 object, as QEMU's chardevs
 * and NBD do it: the client of the host role (the pciefw device), or the
 * server of the endpoint role (pciefw-epc), as the credentials say.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/tlssession.h"
#include "pciefw-stream.h"

typedef struct PCIeFwTlsStream {
    PCIeFwStream base;
    QCryptoTLSSession *session;
    bool server;
    bool established;
} PCIeFwTlsStream;

/* The session's own I/O: the raw socket, never blocking. */
static ssize_t tls_push(const void *buf, size_t len, void *opaque,
                        Error **errp)
{
    PCIeFwTlsStream *t = opaque;
    ssize_t n;

    do {
        n = send(t->base.fd, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return QCRYPTO_TLS_SESSION_ERR_BLOCK;
    }
    if (n < 0) {
        error_setg(errp, "%s", strerror(errno));
    }
    return n;
}

static ssize_t tls_pull(void *buf, size_t len, void *opaque, Error **errp)
{
    PCIeFwTlsStream *t = opaque;
    ssize_t n;

    do {
        n = recv(t->base.fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return QCRYPTO_TLS_SESSION_ERR_BLOCK;
    }
    if (n < 0) {
        error_setg(errp, "%s", strerror(errno));
    }
    return n;
}

static int tls_handshake(PCIeFwStream *st, bool *want_write, Error **errp)
{
    PCIeFwTlsStream *t = container_of(st, PCIeFwTlsStream, base);
    Error *err = NULL;
    int r = qcrypto_tls_session_handshake(t->session, &err);

    if (r < 0) {
        /* A plain-text peer answers a ClientHello with a frame. */
        error_propagate_prepend(errp, err, t->server ?
                                "TLS handshake failed (does the host use "
                                "tls-creds?): " :
                                "TLS handshake failed (is the endpoint "
                                "started with --tls-creds?): ");
        return -1;
    }
    if (r != QCRYPTO_TLS_HANDSHAKE_COMPLETE) {
        *want_write = r == QCRYPTO_TLS_HANDSHAKE_SENDING;
        return 0;
    }
    if (qcrypto_tls_session_check_credentials(t->session, &err) < 0) {
        error_propagate_prepend(errp, err, t->server ?
                                "TLS: the host's certificate is refused: " :
                                "TLS: the endpoint's certificate is "
                                "refused: ");
        return -1;
    }
    t->established = true;
    return 1;
}

/* Map the session's results to the socket-like contract of the stream. */
static ssize_t tls_result(PCIeFwTlsStream *t, ssize_t r, Error *err)
{
    if (r >= 0) {
        return r;
    }
    if (r == QCRYPTO_TLS_SESSION_ERR_BLOCK) {
        errno = EAGAIN;
        return -1;
    }
    g_free(t->base.error);
    t->base.error = err ? g_strdup(error_get_pretty(err)) : NULL;
    error_free(err);
    errno = EPROTO;
    return -1;
}

static ssize_t tls_send(PCIeFwStream *st, const void *buf, size_t len)
{
    PCIeFwTlsStream *t = container_of(st, PCIeFwTlsStream, base);
    Error *err = NULL;
    ssize_t r = qcrypto_tls_session_write(t->session, buf, len, &err);

    return tls_result(t, r, err);
}

static ssize_t tls_recv(PCIeFwStream *st, void *buf, size_t len)
{
    PCIeFwTlsStream *t = container_of(st, PCIeFwTlsStream, base);
    Error *err = NULL;
    ssize_t r = qcrypto_tls_session_read(t->session, buf, len, &err);

    /* An endpoint killed without close_notify has ended the stream too. */
    if (r == QCRYPTO_TLS_SESSION_PREMATURE_TERMINATION) {
        return 0;
    }
    return tls_result(t, r, err);
}

/* Decrypted input the socket's readiness no longer shows. */
static bool tls_pending(PCIeFwStream *st)
{
    PCIeFwTlsStream *t = container_of(st, PCIeFwTlsStream, base);

    return t->established && qcrypto_tls_session_check_pending(t->session);
}

static void tls_free(PCIeFwStream *st)
{
    PCIeFwTlsStream *t = container_of(st, PCIeFwTlsStream, base);

    if (t->established) {
        /* Best effort close_notify; the socket never blocks. */
        qcrypto_tls_session_bye(t->session, NULL);
    }
    qcrypto_tls_session_free(t->session);
    g_free(t);
}

static const PCIeFwStreamOps tls_ops = {
    .handshake = tls_handshake,
    .send = tls_send,
    .recv = tls_recv,
    .pending = tls_pending,
    .set_handlers = pciefw_socket_set_handlers,
    .wait = pciefw_socket_wait,
    .free = tls_free,
};

PCIeFwStream *pciefw_stream_tls(int fd, QCryptoTLSCreds *creds,
                                const char *hostname, Error **errp)
{
    bool server = qcrypto_tls_creds_check_endpoint(
        creds, QCRYPTO_TLS_CREDS_ENDPOINT_SERVER, NULL);
    QCryptoTLSSession *session;
    PCIeFwTlsStream *t;

    session = qcrypto_tls_session_new(creds, server ? NULL : hostname, NULL,
                                      server ?
                                      QCRYPTO_TLS_CREDS_ENDPOINT_SERVER :
                                      QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT, errp);
    if (!session) {
        return NULL;
    }
    t = g_new0(PCIeFwTlsStream, 1);
    t->base.ops = &tls_ops;
    t->base.fd = fd;
    t->server = server;
    t->session = session;
    qcrypto_tls_session_set_callbacks(session, tls_push, tls_pull, t);
    return &t->base;
}

QCryptoTLSCreds *pciefw_tls_creds_find(const char *id, bool server,
                                       const char *dev, Error **errp)
{
    Object *obj = object_resolve_path_component(object_get_objects_root(), id);
    QCryptoTLSCreds *creds = obj ? (QCryptoTLSCreds *)object_dynamic_cast(
                                 obj, TYPE_QCRYPTO_TLS_CREDS) : NULL;
    const char *role = server ? "server" : "client";

    if (!creds) {
        error_setg(errp, "%s: no TLS credentials object '%s' (give -object "
                   "tls-creds-x509,id=%s,dir=DIR,endpoint=%s)", dev, id, id,
                   role);
        return NULL;
    }
    if (!qcrypto_tls_creds_check_endpoint(creds, server ?
                                          QCRYPTO_TLS_CREDS_ENDPOINT_SERVER :
                                          QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT,
                                          errp)) {
        error_prepend(errp, "%s: tls-creds '%s': ", dev, id);
        return NULL;
    }
    object_ref(obj);
    return creds;
}
