/*
 * libFuzzer target for the statement parser.  Whatever it accepts must
 * format back to the very same bytes: a statement has one text form.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fl_statement st;
    struct fl_str s = {0};
    char err[128];

    if (fl_statement_parse(data, size, &st, err, sizeof(err)) != FL_OK) {
        return 0;
    }
    if (fl_statement_format(&st, &s) != FL_OK || s.len != size ||
        memcmp(s.p, data, size) != 0) {
        abort();
    }
    fl_str_fini(&s);
    return 0;
}
