/*
 * libFuzzer target for the NetFlow v1/v5/v7 decoder alone: any bytes in,
 * and every flow that comes out is read whole and checked against the
 * decoder's contract.
 */
#include <stdlib.h>
#include <string.h>

#include "sensor_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keeps the field reads from being optimised away. */
static volatile uint64_t sink;

struct seen {
    unsigned flows;
    uint64_t sum;
};

/* Reads every field, extra included, so ASan sees any bad memory. */
static void
on_flow(void *arg, const struct fl_flow *f)
{
    struct seen *s = arg;

    s->flows++;
    s->sum += f->time_start + f->time_end + f->packets + f->bytes;
    s->sum += f->src_addr.b[15] + f->dst_addr.b[15] + f->next_hop.b[15];
    s->sum += f->exporter.b[15] + f->in_if + f->out_if + f->src_as;
    s->sum += f->dst_as + f->domain + f->sampling + f->src_port;
    s->sum += f->dst_port + f->proto + f->tcp_flags + f->tos;
    if (f->extra_len > FL_EXTRA_MAX || (f->extra_len > 0 && !f->extra)) {
        abort();
    }
    for (uint32_t i = 0; i < f->extra_len; i++) {
        s->sum += f->extra[i];
    }
    /* Unsampled is 1, never 0. */
    if (f->sampling == 0) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fl_addr exporter;
    struct fl_v5_info info;
    struct seen s = {0, 0};
    int rc;

    fl_addr_from_v4(&exporter, 0xc0000201);
    rc = fl_v5_decode(&exporter, data, size, &info, on_flow, &s);

    /* A rejected datagram delivers nothing; an accepted one all of it. */
    if (rc != FL_OK && s.flows != 0) {
        abort();
    }
    if (rc == FL_OK && (s.flows != info.count || info.sampling == 0)) {
        abort();
    }
    if (rc != FL_OK && rc != FL_ETRUNC && rc != FL_EFORMAT &&
        rc != FL_EVERSION) {
        abort();
    }
    sink = s.sum;
    return 0;
}
