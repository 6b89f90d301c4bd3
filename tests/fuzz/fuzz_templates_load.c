/*
 * libFuzzer target for template persistence: any bytes as a state file.
 * What loads must save, what was saved must load again, and what is
 * refused must leave the decoder untouched.
 */
#include <stdlib.h>
#include <string.h>

#include "sensor_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The state file ends in a checksum of the bytes before it; recomputing
 * it lets mutations reach the parser. */
#define SUM_LEN 8

static struct fl_decoder *
new_decoder(void)
{
    struct fl_decoder_limits lim;
    struct fl_decoder *d;

    fl_decoder_limits_default(&lim);
    lim.max_sources = 16;
    lim.max_templates = 16;
    if (fl_decoder_new(&lim, &d) != FL_OK) {
        abort();
    }
    return d;
}

/* Loads what d saves into a fresh decoder; any failure is a bug. */
static void
round_trip(const struct fl_decoder *d)
{
    struct fl_decoder_stats before;
    struct fl_decoder_stats after;
    struct fl_decoder *d2 = new_decoder();
    uint8_t *buf = NULL;
    size_t len = 0;

    if (fl_decoder_templates_save(d, &buf, &len) != FL_OK) {
        abort();
    }
    if (fl_decoder_templates_load(d2, buf, len) != FL_OK) {
        abort();
    }
    fl_decoder_get_stats(d, &before);
    fl_decoder_get_stats(d2, &after);
    if (before.templates != after.templates) {
        abort();
    }
    free(buf);
    fl_decoder_free(d2);
}

/* Loads buf into a fresh decoder and checks either outcome. */
static int
load_one(const uint8_t *buf, size_t len)
{
    struct fl_decoder *d = new_decoder();
    struct fl_decoder_stats st;
    int rc = fl_decoder_templates_load(d, buf, len);

    if (rc == FL_OK) {
        round_trip(d);
    } else {
        /* A refused file must leave the decoder as it was: empty. */
        fl_decoder_get_stats(d, &st);
        if (st.templates != 0 || st.sources != 0) {
            abort();
        }
    }
    fl_decoder_free(d);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;

    /* As given, which exercises the checksum check itself ... */
    if (load_one(data, size) == FL_OK || size < SUM_LEN) {
        return 0;
    }

    /* ... then with a checksum that matches, to reach the parser. */
    copy = malloc(size);
    if (copy == NULL) {
        abort();
    }
    memcpy(copy, data, size);
    fl_put_be64(copy + size - SUM_LEN,
                fl_persist_checksum(copy, size - SUM_LEN));
    load_one(copy, size);
    free(copy);
    return 0;
}
