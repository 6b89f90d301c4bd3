/*
 * Decoding speed on one core (issue 2, "Speed"): the UDP payloads of each
 * pcap are loaded into memory first, then fed to fl_decoder_feed several
 * times, so the table measures the decoder and nothing of the kernel.
 */
#include "sensor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Issue 2's target: IPFIX records decoded per second on one core. */
#define TARGET_RPS 5e6
#define MAX_RUNS 101

/* pcap link types read here; anything else is refused. */
#define LINK_ETHERNET 1
#define LINK_RAW 101
#define LINK_SLL 113

/* The UDP payloads of one capture, back to back in one buffer. */
struct capture {
    const char *path;
    uint8_t *data;
    size_t used;
    size_t cap;
    size_t *off;
    uint32_t *len;
    struct fl_addr *exporter;
    size_t n;
    size_t room;
    uint64_t skipped; /* frames that were not UDP over IPv4/IPv6 */
};

struct pcap_file {
    struct fl_cursor c;
    bool big_endian; /* the writer's byte order */
    uint32_t link;
};

struct result {
    uint64_t flows;
    uint64_t errors;
    double secs[MAX_RUNS];
};

static uint64_t
mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
read_whole(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    long size;
    int rc = FL_EIO;

    if (f == NULL) {
        return FL_EIO;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        goto out;
    }
    p = malloc(size > 0 ? (size_t)size : 1);
    if (p == NULL) {
        rc = FL_ENOMEM;
        goto out;
    }
    if (size > 0 && fread(p, (size_t)size, 1, f) != 1) {
        goto out;
    }
    *buf = p;
    *len = (size_t)size;
    p = NULL;
    rc = FL_OK;
out:
    free(p);
    fclose(f);
    return rc;
}

/* pcap record headers are in the writer's byte order, not network's. */
static bool
pcap_u32(struct pcap_file *pf, uint32_t *v)
{
    uint32_t be;

    if (!fl_cursor_u32(&pf->c, &be)) {
        return false;
    }
    *v = pf->big_endian ? be : __builtin_bswap32(be);
    return true;
}

static int
pcap_open(struct pcap_file *pf, const uint8_t *buf, size_t len)
{
    uint32_t magic;

    fl_cursor_init(&pf->c, buf, len);
    if (!fl_cursor_u32(&pf->c, &magic)) {
        return FL_EFORMAT;
    }
    /* Read big-endian: a1b2c3d4 (us) or a1b23c4d (ns) means big-endian. */
    if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du) {
        pf->big_endian = true;
    } else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u) {
        pf->big_endian = false;
    } else {
        return FL_EFORMAT;
    }
    /* version, thiszone, sigfigs, snaplen, then the link type */
    if (!fl_cursor_skip(&pf->c, 16) || !pcap_u32(pf, &pf->link)) {
        return FL_EFORMAT;
    }
    if (pf->link != LINK_ETHERNET && pf->link != LINK_RAW &&
        pf->link != LINK_SLL) {
        return FL_EFORMAT;
    }
    return FL_OK;
}

/* Moves c past the link header; false when the frame is not IP. */
static bool
skip_link(uint32_t link, struct fl_cursor *c)
{
    uint16_t type;

    if (link == LINK_RAW) {
        return true;
    }
    if (!fl_cursor_skip(c, link == LINK_SLL ? 14 : 12) ||
        !fl_cursor_u16(c, &type)) {
        return false;
    }
    while (type == 0x8100 || type == 0x88a8) { /* VLAN tags */
        if (!fl_cursor_skip(c, 2) || !fl_cursor_u16(c, &type)) {
            return false;
        }
    }
    return type == 0x0800 || type == 0x86dd;
}

static bool
skip_ipv4(struct fl_cursor *c, struct fl_addr *src)
{
    const uint8_t *addr;
    uint8_t vihl;
    uint8_t proto;
    uint16_t frag;
    size_t hlen;

    /* version+IHL, ToS, total length, id, then flags+offset, TTL, proto */
    if (!fl_cursor_u8(c, &vihl) || !fl_cursor_skip(c, 5) ||
        !fl_cursor_u16(c, &frag) || !fl_cursor_skip(c, 1) ||
        !fl_cursor_u8(c, &proto) || !fl_cursor_skip(c, 2) ||
        !fl_cursor_bytes(c, 4, &addr) || !fl_cursor_skip(c, 4)) {
        return false;
    }
    hlen = (size_t)(vihl & 0x0f) * 4;
    /* any fragment offset or the more-fragments bit: not a whole datagram */
    if (proto != 17 || (frag & 0x3fff) != 0 || hlen < 20) {
        return false;
    }
    fl_addr_from_v4_bytes(src, addr);
    return fl_cursor_skip(c, hlen - 20);
}

static bool
skip_ipv6(struct fl_cursor *c, struct fl_addr *src)
{
    const uint8_t *addr;
    uint8_t next;

    /* version+class+label, payload length, next header, hop limit */
    if (!fl_cursor_skip(c, 6) || !fl_cursor_u8(c, &next) ||
        !fl_cursor_skip(c, 1) || !fl_cursor_bytes(c, 16, &addr) ||
        !fl_cursor_skip(c, 16)) {
        return false;
    }
    /* extension headers are not followed: exporters do not send them */
    if (next != 17) {
        return false;
    }
    fl_addr_from_v6(src, addr);
    return true;
}

/* Leaves c on the UDP header; false for anything but unfragmented UDP. */
static bool
skip_ip(struct fl_cursor *c, struct fl_addr *src)
{
    struct fl_cursor peek = *c;
    uint8_t vihl;

    if (!fl_cursor_u8(&peek, &vihl)) {
        return false;
    }
    if (vihl >> 4 == 4) {
        return skip_ipv4(c, src);
    }
    return vihl >> 4 == 6 && skip_ipv6(c, src);
}

static int
capture_add(struct capture *cap, const struct fl_addr *src, const uint8_t *p,
            size_t len)
{
    if (cap->n == cap->room) {
        size_t room = cap->room ? cap->room * 2 : 4096;
        size_t *off = realloc(cap->off, room * sizeof(*off));
        uint32_t *lens;
        struct fl_addr *ex;

        if (off == NULL) {
            return FL_ENOMEM;
        }
        cap->off = off;
        lens = realloc(cap->len, room * sizeof(*lens));
        if (lens == NULL) {
            return FL_ENOMEM;
        }
        cap->len = lens;
        ex = realloc(cap->exporter, room * sizeof(*ex));
        if (ex == NULL) {
            return FL_ENOMEM;
        }
        cap->exporter = ex;
        cap->room = room;
    }
    /* cap->data was sized to the whole file, so the payloads always fit */
    memcpy(cap->data + cap->used, p, len);
    cap->off[cap->n] = cap->used;
    cap->len[cap->n] = (uint32_t)len;
    cap->exporter[cap->n] = *src;
    cap->used += len;
    cap->n++;
    return FL_OK;
}

/* Takes one frame's UDP payload into cap, or counts the frame skipped. */
static int
take_frame(struct capture *cap, uint32_t link, const uint8_t *frame, size_t len)
{
    struct fl_cursor c;
    struct fl_addr src;
    uint16_t udp_len;

    fl_cursor_init(&c, frame, len);
    if (!skip_link(link, &c) || !skip_ip(&c, &src) || !fl_cursor_skip(&c, 4) ||
        !fl_cursor_u16(&c, &udp_len) || !fl_cursor_skip(&c, 2) || udp_len < 8 ||
        udp_len - 8u > c.left) {
        cap->skipped++;
        return FL_OK;
    }
    return capture_add(cap, &src, c.p, udp_len - 8u);
}

static int
capture_load(struct capture *cap, const char *path)
{
    struct pcap_file pf;
    uint8_t *file = NULL;
    size_t size;
    int rc;

    memset(cap, 0, sizeof(*cap));
    cap->path = path;
    rc = read_whole(path, &file, &size);
    if (rc != FL_OK) {
        goto out;
    }
    rc = pcap_open(&pf, file, size);
    if (rc != FL_OK) {
        goto out;
    }
    cap->data = malloc(size > 0 ? size : 1);
    if (cap->data == NULL) {
        rc = FL_ENOMEM;
        goto out;
    }
    while (pf.c.left > 0 && rc == FL_OK) {
        uint32_t incl;
        const uint8_t *frame;

        /* ts_sec, ts_usec, incl_len, orig_len, then the frame */
        if (!fl_cursor_skip(&pf.c, 8) || !pcap_u32(&pf, &incl) ||
            !fl_cursor_skip(&pf.c, 4) ||
            !fl_cursor_bytes(&pf.c, incl, &frame)) {
            rc = FL_EFORMAT;
            break;
        }
        rc = take_frame(cap, pf.link, frame, incl);
    }
out:
    free(file);
    return rc;
}

static void
capture_free(struct capture *cap)
{
    free(cap->data);
    free(cap->off);
    free(cap->len);
    free(cap->exporter);
}

static const char *
base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

static const char *
version_name(const struct capture *cap)
{
    uint64_t v = cap->n > 0 && cap->len[0] >= 2
                     ? fl_be_uint(cap->data + cap->off[0], 2)
                     : 0;

    switch (v) {
    case 10:
        return "IPFIX";
    case 9:
        return "v9";
    case 5:
        return "v5";
    case 7:
        return "v7";
    case 1:
        return "v1";
    default:
        return "?";
    }
}

/* What every collector does with a flow at the very least: count it and
 * read a field, so no pass can be cheaper than real use. */
struct tally {
    uint64_t flows;
    uint64_t bytes;
};

static void
count_flow(void *arg, const struct fl_flow *flow)
{
    struct tally *t = arg;

    t->flows++;
    t->bytes += flow->bytes;
}

/* One timed pass over every payload with a fresh decoder. */
static int
run_once(const struct capture *cap, uint64_t now_ms, double *secs,
         uint64_t *flows, uint64_t *errors)
{
    struct fl_decoder *d;
    struct fl_decoder_stats st;
    struct tally t = {0, 0};
    uint64_t t0;
    int rc;

    rc = fl_decoder_new(NULL, &d);
    if (rc != FL_OK) {
        return rc;
    }
    t0 = mono_ns();
    for (size_t i = 0; i < cap->n; i++) {
        (void)fl_decoder_feed(d, &cap->exporter[i], cap->data + cap->off[i],
                              cap->len[i], now_ms, count_flow, &t);
    }
    *secs = (double)(mono_ns() - t0) / 1e9;
    fl_decoder_get_stats(d, &st);
    *flows = t.flows;
    *errors = 0;
    for (int e = 0; e < FL_DE_COUNT; e++) {
        *errors += st.errors[e];
    }
    fl_decoder_free(d);
    return FL_OK;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

/* One warm-up pass, then runs timed ones; secs ends up sorted. */
static int
measure(const struct capture *cap, int runs, struct result *res)
{
    uint64_t now_ms = fl_time_now_ms();
    double warm;
    int rc;

    rc = run_once(cap, now_ms, &warm, &res->flows, &res->errors);
    for (int i = 0; i < runs && rc == FL_OK; i++) {
        rc = run_once(cap, now_ms, &res->secs[i], &res->flows, &res->errors);
    }
    qsort(res->secs, (size_t)runs, sizeof(res->secs[0]), cmp_double);
    return rc;
}

static void
print_header(int runs)
{
    printf("decode from memory, one thread, median of %d runs "
           "(target: IPFIX >= %.0f M records/s)\n\n",
           runs, TARGET_RPS / 1e6);
    printf("%-16s %-7s %9s %9s %7s %8s %10s %19s %7s %8s\n", "file", "version",
           "datagrams", "records", "errors", "MB", "ns/record",
           "records/s (median)", "spread", "x target");
}

static void
print_row(const struct capture *cap, const struct result *res, int runs)
{
    double med = res->secs[runs / 2];
    double rps = med > 0 ? (double)res->flows / med : 0;
    double best = res->secs[0] > 0 ? (double)res->flows / res->secs[0] : 0;
    double worst =
        res->secs[runs - 1] > 0 ? (double)res->flows / res->secs[runs - 1] : 0;

    /* spread: (fastest - slowest) / median, how noisy the machine was */
    printf("%-16.16s %-7s %9zu %9" PRIu64 " %7" PRIu64
           " %8.1f %10.1f %19.0f %6.0f%% "
           "%8.2f\n",
           base_name(cap->path), version_name(cap), cap->n, res->flows,
           res->errors, (double)cap->used / 1e6,
           res->flows > 0 ? med * 1e9 / (double)res->flows : 0, rps,
           rps > 0 ? (best - worst) / rps * 100 : 0, rps / TARGET_RPS);
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: bench_decode [-r RUNS] FILE.pcap...\n"
                 "  -r RUNS   timed runs per file, median shown (default 5, "
                 "at most 101)\n");
}

static int
parse_runs(int *argi, int argc, char **argv)
{
    char *end;
    long runs = 5;

    if (*argi < argc && strcmp(argv[*argi], "-r") == 0) {
        if (*argi + 1 >= argc) {
            return -1;
        }
        errno = 0;
        runs = strtol(argv[*argi + 1], &end, 10);
        if (errno != 0 || *end != '\0' || runs < 1 || runs > MAX_RUNS) {
            return -1;
        }
        *argi += 2;
    }
    return (int)runs;
}

int
main(int argc, char **argv)
{
    int argi = 1;
    int runs;
    int status = 0;

    if (argc > 1 &&
        (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    runs = parse_runs(&argi, argc, argv);
    if (runs < 0 || argi >= argc) {
        usage(stderr);
        return 2;
    }
    print_header(runs);
    for (; argi < argc; argi++) {
        struct capture cap;
        struct result res;
        int rc = capture_load(&cap, argv[argi]);

        if (rc == FL_OK) {
            rc = measure(&cap, runs, &res);
        }
        if (rc == FL_OK) {
            print_row(&cap, &res, runs);
        } else {
            fprintf(stderr, "bench_decode: %s: %s\n", argv[argi],
                    fl_strerror(rc));
            status = 1;
        }
        capture_free(&cap);
    }
    return status;
}
