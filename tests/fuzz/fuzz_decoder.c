/*
 * libFuzzer target for the whole decoder: the input is a series of
 * datagrams from four exporters fed to one long-lived decoder with small
 * ceilings, so templates, held data, expiry and every limit get exercised.
 *
 * Input format, repeated: a 2-byte big-endian length n, then n bytes whose
 * first selects the exporter (low 2 bits) and the time step (high 6 bits)
 * and whose rest is the datagram.  A short last chunk is used as it is.
 */
#include <stdlib.h>
#include <string.h>

#include "sensor.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_EXPORTERS 4

static struct fl_decoder *dec;
static struct fl_decoder_limits lim;
static struct fl_addr exporters[N_EXPORTERS];
static uint64_t now_ms = 1700000000000ull;

/* Keeps the field reads from being optimised away. */
static volatile uint64_t sink;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Small ceilings, so reaching each one is a common path. */
    fl_decoder_limits_default(&lim);
    lim.max_sources = 6;
    lim.max_templates = 8;
    lim.max_pending = 4;
    lim.max_pending_bytes = 4096;
    lim.pending_age_ms = 2000;
    if (fl_decoder_new(&lim, &dec) != FL_OK) {
        abort();
    }
    fl_addr_from_v4(&exporters[0], 0xc0000201);
    fl_addr_from_v4(&exporters[1], 0xc0000202);
    if (fl_addr_parse("2001:db8::1", &exporters[2]) != FL_OK ||
        fl_addr_parse("2001:db8::2", &exporters[3]) != FL_OK) {
        abort();
    }
    return 0;
}

static uint64_t
sum_addr(const struct fl_addr *a)
{
    uint64_t s = 0;

    for (size_t i = 0; i < sizeof(a->b); i++) {
        s += a->b[i];
    }
    return s;
}

/* Reads every field, extra included, so ASan sees any bad memory. */
static void
on_flow(void *arg, const struct fl_flow *f)
{
    char line[FL_FLOW_NDJSON_MAX];
    uint64_t s = 0;

    (void)arg;
    s += f->time_start + f->time_end + f->packets + f->bytes;
    s += sum_addr(&f->src_addr) + sum_addr(&f->dst_addr);
    s += sum_addr(&f->next_hop) + sum_addr(&f->exporter);
    s += sum_addr(&f->xlate_src_addr) + sum_addr(&f->xlate_dst_addr);
    s += f->in_if + f->out_if + f->src_as + f->dst_as + f->mpls;
    s += f->domain + f->sampling + f->src_port + f->dst_port + f->vlan;
    s += f->proto + f->tcp_flags + f->tos + f->direction + f->fw_event;
    s += f->xlate_src_port + f->xlate_dst_port;
    s += f->rev_packets + f->rev_bytes;
    if (f->extra_len > 0 && f->extra == NULL) {
        abort();
    }
    for (uint32_t i = 0; i < f->extra_len; i++) {
        s += f->extra[i];
    }
    /* The NDJSON formatter is what --print runs on every decoded flow. */
    if (fl_flow_format_ndjson(f, "fuzz", line, sizeof(line)) > 0) {
        s += (uint8_t)line[0];
    }
    sink += s;
}

/* The decoder's counters must stay within the ceilings it was given. */
static void
check_limits(void)
{
    struct fl_decoder_stats st;

    fl_decoder_get_stats(dec, &st);
    if (st.sources > lim.max_sources || st.pending > lim.max_pending ||
        st.templates > (uint64_t)lim.max_sources * lim.max_templates) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned fed = 0;

    while (size >= 2) {
        size_t n = (size_t)data[0] << 8 | data[1];
        uint8_t sel;

        data += 2;
        size -= 2;
        if (n > size) {
            n = size;
        }
        if (n == 0) {
            continue;
        }
        sel = data[0];
        now_ms += (uint64_t)(sel >> 2) * 250;
        fl_decoder_feed(dec, &exporters[sel & 3], data + 1, n - 1, now_ms,
                        on_flow, NULL);
        data += n;
        size -= n;
        if (++fed % 8 == 0) {
            fl_decoder_expire(dec, now_ms);
        }
    }
    fl_decoder_expire(dec, now_ms);
    check_limits();
    return 0;
}
