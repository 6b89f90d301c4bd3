/*
 * fl0wer-gen's sinks: datagrams go out in bursts through sendmmsg on a
 * connected UDP socket, or into a pcap written by hand (Ethernet, IPv4,
 * UDP), so that runs can be replayed and decoded by other tools.
 */
#include "gen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Datagrams handed to the kernel per sendmmsg call. */
#define GEN_BURST 64
#define PCAP_FRAME_HEADERS (14 + 20 + 8)
#define PCAP_EXPORTER_BASE 0xc0000201u /* 192.0.2.1 */
#define PCAP_COLLECTOR 0xc6336401u     /* 198.51.100.1 */

struct gen_sink {
    int fd;
    FILE *pcap;
    struct fl_addr local; /* as the receiver sees us */
    uint32_t pcap_dst;    /* host order */
    uint16_t port;
    uint16_t source_port;
    uint16_t ip_id;
    uint64_t pcap_us;
    unsigned n;
    uint8_t *bufs;
    uint32_t dom[GEN_BURST];
    struct iovec iov[GEN_BURST];
    struct mmsghdr msgs[GEN_BURST];
};

static void
sockaddr_to_addr(const struct sockaddr_storage *ss, struct fl_addr *a)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

        fl_addr_from_v4_bytes(a, (const uint8_t *)&sin->sin_addr);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

        fl_addr_from_v6(a, sin6->sin6_addr.s6_addr);
    }
}

static int
bind_source(int fd, int family, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len;

    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        len = sizeof(*sin6);
    }
    return bind(fd, (struct sockaddr *)&ss, len);
}

static int
open_socket(struct gen_sink *s, const char *host, uint16_t port,
            uint16_t source_port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM};
    struct addrinfo *ai = NULL;
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    char service[8];
    int sndbuf = 4 << 20;
    int rc = FL_ENET;

    snprintf(service, sizeof(service), "%u", port);
    if (getaddrinfo(host, service, &hints, &ai) != 0) {
        snprintf(err, errlen, "cannot resolve %s", host);
        return FL_ENET;
    }
    s->fd = socket(ai->ai_family, SOCK_DGRAM, 0);
    if (s->fd < 0 ||
        (source_port != 0 && bind_source(s->fd, ai->ai_family, source_port)) ||
        connect(s->fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&local, &len) != 0) {
        snprintf(err, errlen, "socket to %s port %u: %s", host, port,
                 strerror(errno));
        goto out;
    }
    /* Bigger bursts in flight; failure only costs speed. */
    (void)setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    sockaddr_to_addr(&local, &s->local);
    rc = FL_OK;
out:
    freeaddrinfo(ai);
    return rc;
}

static int
open_pcap(struct gen_sink *s, const char *path, const char *host, char *err,
          size_t errlen)
{
    uint8_t hdr[24];
    struct fl_addr dst;
    uint32_t w[6] = {0xa1b2c3d4u, 2 | (4u << 16), 0, 0, 65535, 1};

    s->pcap_dst = PCAP_COLLECTOR;
    if (fl_addr_parse(host, &dst) == FL_OK && fl_addr_is_v4(&dst)) {
        s->pcap_dst = (uint32_t)fl_be_uint(dst.b + 12, 4);
    }
    s->pcap = fopen(path, "wb");
    if (s->pcap == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return FL_EIO;
    }
    /* Native byte order, as libpcap writes it: version 2.4, Ethernet. */
    memcpy(hdr, &w[0], 4);
    memcpy(hdr + 4, &w[1], 4);
    memcpy(hdr + 8, &w[2], 4);
    memcpy(hdr + 12, &w[3], 4);
    memcpy(hdr + 16, &w[4], 4);
    memcpy(hdr + 20, &w[5], 4);
    if (fwrite(hdr, sizeof(hdr), 1, s->pcap) != 1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return FL_EIO;
    }
    return FL_OK;
}

int
gen_sink_open(const char *target, uint16_t source_port, const char *path,
              uint64_t pcap_ms, struct gen_sink **out, char *err, size_t errlen)
{
    struct gen_sink *s;
    char host[FL_ADDR_STRLEN + 256];
    int rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->bufs = malloc(GEN_BURST * GEN_DGRAM_MAX)) == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    s->fd = -1;
    rc = fl_parse_hostport(target, host, sizeof(host), &s->port);
    if (rc != FL_OK) {
        snprintf(err, errlen, "bad target %s", target);
        goto out;
    }
    if (host[0] == '\0') {
        snprintf(host, sizeof(host), "127.0.0.1");
    }
    s->source_port = source_port != 0 ? source_port : 50000;
    s->pcap_us = pcap_ms * 1000;
    rc = path != NULL ? open_pcap(s, path, host, err, errlen)
                      : open_socket(s, host, s->port, source_port, err, errlen);
out:
    if (rc != FL_OK) {
        gen_sink_close(s);
        return rc;
    }
    *out = s;
    return FL_OK;
}

void
gen_sink_close(struct gen_sink *s)
{
    if (s == NULL) {
        return;
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    if (s->pcap != NULL) {
        fclose(s->pcap);
    }
    free(s->bufs);
    free(s);
}

void
gen_sink_exporter(const struct gen_sink *s, uint32_t d, struct fl_addr *out)
{
    if (s->pcap != NULL) {
        fl_addr_from_v4(out, PCAP_EXPORTER_BASE + d % 254);
        return;
    }
    *out = s->local;
}

uint8_t *
gen_sink_slot(struct gen_sink *s)
{
    return s->bufs + (size_t)s->n * GEN_DGRAM_MAX;
}

int
gen_sink_commit(struct gen_sink *s, size_t len, uint32_t d)
{
    s->iov[s->n].iov_base = gen_sink_slot(s);
    s->iov[s->n].iov_len = len;
    memset(&s->msgs[s->n], 0, sizeof(s->msgs[s->n]));
    s->msgs[s->n].msg_hdr.msg_iov = &s->iov[s->n];
    s->msgs[s->n].msg_hdr.msg_iovlen = 1;
    s->dom[s->n] = d;
    s->n++;
    return s->n == GEN_BURST ? gen_sink_flush(s) : FL_OK;
}

static void
pause_briefly(void)
{
    struct timespec ts = {0, 100000};

    nanosleep(&ts, NULL);
}

static int
flush_socket(struct gen_sink *s)
{
    unsigned done = 0;

    while (done < s->n) {
        int r = sendmmsg(s->fd, s->msgs + done, s->n - done, 0);

        if (r >= 0) {
            done += (unsigned)r;
            continue;
        }
        /* A refusal reports an earlier datagram nobody received: the
         * receiver may not be up yet; the current one was not sent. */
        if (errno == ECONNREFUSED || errno == EINTR) {
            continue;
        }
        if (errno == ENOBUFS || errno == EAGAIN) {
            pause_briefly();
            continue;
        }
        return FL_ENET;
    }
    return FL_OK;
}

static uint16_t
ip_checksum(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;

    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}

/* Ethernet, IPv4 and UDP headers for a payload of len bytes. */
static void
put_frame_headers(struct gen_sink *s, uint8_t *h, size_t len, uint32_t d)
{
    static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x02,
                                     0x02, 0, 0, 0, 0, 0x01};

    memcpy(h, macs, 12);
    fl_put_be16(h + 12, 0x0800);
    h += 14;
    h[0] = 0x45;
    h[1] = 0;
    fl_put_be16(h + 2, (uint16_t)(20 + 8 + len));
    fl_put_be16(h + 4, s->ip_id++);
    fl_put_be16(h + 6, 0x4000); /* don't fragment */
    h[8] = 64;
    h[9] = 17;
    fl_put_be16(h + 10, 0);
    fl_put_be32(h + 12, PCAP_EXPORTER_BASE + d % 254);
    fl_put_be32(h + 16, s->pcap_dst);
    fl_put_be16(h + 10, ip_checksum(h, 20));
    h += 20;
    fl_put_be16(h, s->source_port);
    fl_put_be16(h + 2, s->port);
    fl_put_be16(h + 4, (uint16_t)(8 + len));
    fl_put_be16(h + 6, 0); /* no checksum, allowed over IPv4 */
}

static int
flush_pcap(struct gen_sink *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        size_t len = s->iov[i].iov_len;
        uint32_t rec[4];
        uint8_t frame[PCAP_FRAME_HEADERS];

        rec[0] = (uint32_t)(s->pcap_us / 1000000);
        rec[1] = (uint32_t)(s->pcap_us % 1000000);
        rec[2] = (uint32_t)(len + PCAP_FRAME_HEADERS);
        rec[3] = rec[2];
        s->pcap_us += 10;
        put_frame_headers(s, frame, len, s->dom[i]);
        if (fwrite(rec, sizeof(rec), 1, s->pcap) != 1 ||
            fwrite(frame, sizeof(frame), 1, s->pcap) != 1 ||
            fwrite(s->iov[i].iov_base, len, 1, s->pcap) != 1) {
            return FL_EIO;
        }
    }
    return fflush(s->pcap) == 0 ? FL_OK : FL_EIO;
}

int
gen_sink_flush(struct gen_sink *s)
{
    int rc;

    if (s->n == 0) {
        return FL_OK;
    }
    rc = s->pcap != NULL ? flush_pcap(s) : flush_socket(s);
    s->n = 0;
    return rc;
}
