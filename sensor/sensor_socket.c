/*
 * The sensor's UDP sockets: one per --listen address, all served by one
 * thread with poll() and drained in batches with recvmmsg(), with the
 * kernel's own count of datagrams it dropped for lack of buffer room.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sensor_int.h"

/* Datagrams taken per recvmmsg call, and room for the largest UDP one. */
#define RECV_BATCH 64
#define RECV_BUFLEN 65536

struct sock {
    int fd;
    uint32_t last_drops; /* the kernel's cumulative counter, last seen */
    char name[64];       /* the --listen text, for logs */
};

/* Room for one control message: the SO_RXQ_OVFL counter, a u32. */
#define CTRL_LEN CMSG_SPACE(sizeof(uint32_t))

struct fl_listener {
    struct sock *socks;
    struct pollfd *pfds;
    size_t n;
    uint64_t drops;
    uint8_t *bufs; /* RECV_BATCH buffers of RECV_BUFLEN, allocated once */
    struct mmsghdr msgs[RECV_BATCH];
    struct iovec iov[RECV_BATCH];
    struct sockaddr_storage from[RECV_BATCH];
    /* CMSG_SPACE rounds to size_t, so every row stays aligned. */
    _Alignas(size_t) char ctrl[RECV_BATCH][CTRL_LEN];
};

/* Resolves "[ADDR:]PORT"; an empty ADDR is every address, v4 and v6. */
static int
resolve(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    char host[INET6_ADDRSTRLEN];
    uint16_t port;

    memset(ss, 0, sizeof(*ss));
    if (fl_parse_hostport(spec, host, sizeof(host), &port) != FL_OK) {
        return FL_EINVAL;
    }
    if (host[0] == '\0' || inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *sslen = sizeof(*in6);
        return FL_OK;
    }
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *sslen = sizeof(*in4);
        return FL_OK;
    }
    return FL_EINVAL;
}

/* Asks for rcvbuf bytes, past net.core.rmem_max when privileged. */
static void
set_rcvbuf(int fd, const char *name, uint64_t rcvbuf)
{
    int want = rcvbuf > INT_MAX / 2 ? INT_MAX / 2 : (int)rcvbuf;
    int got = 0;
    socklen_t len = sizeof(got);

    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) != 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
    }
    (void)getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len);
    /* Linux reports twice what it grants, the rest being its overhead. */
    if (got / 2 < want) {
        fl_log(FL_LOG_WARN, "FL-SENSOR-RCVBUF",
               "receive buffer smaller than asked listen=%s asked=%d "
               "granted=%d hint=raise net.core.rmem_max or run with "
               "CAP_NET_ADMIN",
               name, want, got / 2);
    } else {
        fl_log(FL_LOG_INFO, "FL-SENSOR-RCVBUF",
               "receive buffer listen=%s granted=%d", name, got / 2);
    }
}

/* Creates the socket for a resolved address, options set, not bound. */
static int
make_socket(const struct sockaddr_storage *ss, bool any)
{
    int on = 1;
    int v6only = any ? 0 : 1;
    int fd;

    fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof(on)) != 0 ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) !=
             0)) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/*
 * A bare port is one IPv6 socket that takes IPv4 too; on a host without
 * IPv6 it falls back to IPv4 alone.
 */
static int
open_one(const char *spec, uint64_t rcvbuf, struct sock *s, char *err,
         size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    bool any = strchr(spec, ':') == NULL;

    s->fd = -1;
    snprintf(s->name, sizeof(s->name), "%s", spec);
    if (resolve(spec, &ss, &sslen) != FL_OK) {
        snprintf(err, errlen, "listen %s: expected [ADDR:]PORT", spec);
        return FL_EINVAL;
    }
    s->fd = make_socket(&ss, any);
    if (s->fd < 0 && any && errno == EAFNOSUPPORT) {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        uint16_t port = ((struct sockaddr_in6 *)&ss)->sin6_port;

        memset(&ss, 0, sizeof(ss));
        in4->sin_family = AF_INET;
        in4->sin_port = port;
        sslen = sizeof(*in4);
        s->fd = make_socket(&ss, any);
    }
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&ss, sslen) != 0) {
        snprintf(err, errlen, "listen %s: %s", spec, strerror(errno));
        return FL_ENET;
    }
    set_rcvbuf(s->fd, spec, rcvbuf);
    fl_log(FL_LOG_INFO, "FL-SENSOR-LISTEN", "listening listen=%s family=%s",
           spec,
           ss.ss_family == AF_INET6 ? (any ? "ipv6+ipv4" : "ipv6") : "ipv4");
    return FL_OK;
}

int
fl_listener_open(const struct fl_strlist *addrs, uint64_t rcvbuf,
                 struct fl_listener **out, char *err, size_t errlen)
{
    struct fl_listener *l;
    int rc = FL_ENOMEM;

    *out = NULL;
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return FL_ENOMEM;
    }
    l->socks = calloc(addrs->n, sizeof(*l->socks));
    l->pfds = calloc(addrs->n, sizeof(*l->pfds));
    l->bufs = malloc((size_t)RECV_BATCH * RECV_BUFLEN);
    if (l->socks == NULL || l->pfds == NULL || l->bufs == NULL) {
        snprintf(err, errlen, "listen: %s", fl_strerror(FL_ENOMEM));
        goto out;
    }

    for (size_t i = 0; i < addrs->n; i++) {
        rc = open_one(addrs->v[i], rcvbuf, &l->socks[i], err, errlen);
        l->n = i + 1;
        if (rc != FL_OK) {
            goto out;
        }
        l->pfds[i].fd = l->socks[i].fd;
        l->pfds[i].events = POLLIN;
    }
    *out = l;
    l = NULL;
    rc = FL_OK;
out:
    fl_listener_close(l);
    return rc;
}

void
fl_listener_close(struct fl_listener *l)
{
    if (l == NULL) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->socks[i].fd >= 0) {
            close(l->socks[i].fd);
        }
    }
    free(l->socks);
    free(l->pfds);
    free(l->bufs);
    free(l);
}

uint64_t
fl_listener_drops(const struct fl_listener *l)
{
    return l->drops;
}

static void
prepare_batch(struct fl_listener *l)
{
    for (size_t i = 0; i < RECV_BATCH; i++) {
        struct msghdr *m = &l->msgs[i].msg_hdr;

        l->iov[i].iov_base = l->bufs + i * RECV_BUFLEN;
        l->iov[i].iov_len = RECV_BUFLEN;
        memset(m, 0, sizeof(*m));
        m->msg_name = &l->from[i];
        m->msg_namelen = sizeof(l->from[i]);
        m->msg_iov = &l->iov[i];
        m->msg_iovlen = 1;
        m->msg_control = l->ctrl[i];
        m->msg_controllen = sizeof(l->ctrl[i]);
    }
}

/* The sender, IPv4-mapped when it is IPv4 (a mapped IPv6 peer already is). */
static void
peer_addr(const struct sockaddr_storage *ss, struct fl_datagram *dg)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;

        fl_addr_from_v4(&dg->exporter, ntohl(in4->sin_addr.s_addr));
        dg->port = ntohs(in4->sin_port);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

        fl_addr_from_v6(&dg->exporter, in6->sin6_addr.s6_addr);
        dg->port = ntohs(in6->sin6_port);
    }
}

/* The drop counter is cumulative per socket: add what it grew by. */
static void
read_drops(struct fl_listener *l, struct sock *s, struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL;
         c = CMSG_NXTHDR(m, c)) {
        uint32_t v;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL ||
            c->cmsg_len < CMSG_LEN(sizeof(v))) {
            continue;
        }
        memcpy(&v, CMSG_DATA(c), sizeof(v));
        l->drops += (uint32_t)(v - s->last_drops);
        s->last_drops = v;
    }
}

/* One recvmmsg on a readable socket.  Returns datagrams or FL_ENET. */
static int
recv_batch(struct fl_listener *l, struct sock *s, fl_datagram_fn fn, void *arg)
{
    struct fl_datagram dg;
    int n;

    prepare_batch(l);
    n = recvmmsg(s->fd, l->msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
        /* Nothing queued after all, or a transient kernel shortage. */
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
            errno == ENOBUFS || errno == ENOMEM || errno == ECONNREFUSED) {
            return 0;
        }
        fl_log(FL_LOG_ERR, "FL-SENSOR-LISTEN", "receive failed listen=%s: %s",
               s->name, strerror(errno));
        return FL_ENET;
    }
    dg.time_ms = fl_time_now_ms();
    for (int i = 0; i < n; i++) {
        read_drops(l, s, &l->msgs[i].msg_hdr);
        peer_addr(&l->from[i], &dg);
        dg.data = l->iov[i].iov_base;
        dg.len = l->msgs[i].msg_len;
        fn(arg, &dg);
    }
    return n;
}

int
fl_listener_poll(struct fl_listener *l, int timeout_ms, fl_datagram_fn fn,
                 void *arg)
{
    int total = 0;
    int rc;

    rc = poll(l->pfds, (nfds_t)l->n, timeout_ms);
    if (rc < 0) {
        if (errno == EINTR) {
            return 0;
        }
        fl_log(FL_LOG_ERR, "FL-SENSOR-LISTEN", "poll failed: %s",
               strerror(errno));
        return FL_ENET;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->pfds[i].revents == 0) {
            continue;
        }
        rc = recv_batch(l, &l->socks[i], fn, arg);
        if (rc < 0) {
            return rc;
        }
        total += rc;
    }
    return total;
}
