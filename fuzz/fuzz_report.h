/* fuzz_report.h — the check every decoding fuzz target runs on its decoded reports:
 * structural invariants, then the JSON the writer thread would store (attributes are
 * formatted only then), which must parse back. Traps on a violation. */
#ifndef ST_FUZZ_REPORT_H
#define ST_FUZZ_REPORT_H

#include <stddef.h>

#include "../src/model/report.h"

void fuzz_check_reports(const struct report *reports, size_t n);

#endif
