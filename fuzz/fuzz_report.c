/* fuzz_report.c — see fuzz_report.h. */
#include "fuzz_report.h"

#include <jansson.h>
#include <stdio.h>

#include "../src/core/buf.h"
#include "../src/core/jsonw.h"
#include "../src/model/report_json.h"

void fuzz_check_reports(const struct report *reports, size_t n)
{
    static struct buf out; /* reused across inputs: the fuzzer's leak check sees one buffer */
    for (size_t i = 0; i < n; i++) {
        const struct report *r = &reports[i];
        if (r->attr_used > sizeof r->attr_text || r->n_events > REPORT_MAX_EVENTS)
            __builtin_trap();
        struct jsonw w;
        out.len = 0;
        jsonw_init(&w, &out);
        report_json_write(&w, r);
        json_error_t err;
        json_t *back = json_loadb((const char *)out.data, out.len, 0, &err);
        if (!back || !json_is_object(back)) { /* the stored JSON of a report must always parse */
            fprintf(stderr, "report JSON does not parse (%s at %d): %.*s\n", err.text, err.position,
                    (int)out.len, (const char *)out.data);
            __builtin_trap();
        }
        json_decref(back);
    }
}
