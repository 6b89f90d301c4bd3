/*
 * libFuzzer target for the filter parser: any bytes as filter text.  A
 * filter that parses is matched against a few flows, and every flow it
 * matches must satisfy the planner's needs, or the index would hide it.
 */
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
need_holds(const struct fl_scan_need *n, const struct fl_flow *f)
{
    for (size_t i = 0; i < n->n; i++) {
        if ((n->side != FL_SIDE_DST &&
             fl_prefix_contains(&n->prefixes[i], &f->src_addr)) ||
            (n->side != FL_SIDE_SRC &&
             fl_prefix_contains(&n->prefixes[i], &f->dst_addr))) {
            return true;
        }
    }
    return false;
}

/* Flows whose addresses and ports the seeds mention, so matches happen. */
static void
make_flows(struct fl_flow f[4])
{
    static const char *addrs[4][2] = {
        {"10.0.0.1", "192.0.2.7"},
        {"2001:db8::1", "2001:db8:ff::2"},
        {"172.16.5.4", "10.0.0.1"},
        {"198.51.100.3", "203.0.113.9"},
    };

    for (int i = 0; i < 4; i++) {
        fl_flow_clear(&f[i]);
        fl_addr_parse(addrs[i][0], &f[i].src_addr);
        fl_addr_parse(addrs[i][1], &f[i].dst_addr);
        f[i].src_port = (uint16_t)(53 * (i + 1));
        f[i].dst_port = 443;
        f[i].proto = i % 2 ? 17 : 6;
        f[i].packets = 10u << i;
        f[i].bytes = 1000u << (4 * i);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fl_filter *flt;
    const struct fl_scan_need *needs;
    struct fl_flow flows[4];
    char err[256];
    size_t col;
    size_t n;
    char *text;

    if (size > 4096) {
        return 0;
    }
    text = malloc(size + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    if (fl_filter_parse(text, &flt, err, sizeof(err), &col) == FL_OK) {
        make_flows(flows);
        fl_filter_needs(flt, &needs, &n);
        for (int i = 0; i < 4; i++) {
            if (!fl_filter_match(flt, &flows[i], "s")) {
                continue;
            }
            for (size_t j = 0; j < n; j++) {
                if (!need_holds(&needs[j], &flows[i])) {
                    abort(); /* the index would miss this flow */
                }
            }
        }
        fl_filter_free(flt);
    } else if (col == 0 || col > size + 1) {
        abort(); /* an error must point inside the text or just past it */
    }
    free(text);
    return 0;
}
