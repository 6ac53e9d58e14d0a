// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for logrepo's event decoding: the input as one datagram
 * (eh_logrec_decode, then both stored forms and a field lookup, as serve
 * does), and the input as a JSON-lines log read by the report (load,
 * compute, text and JSON output). An accepted record must re-encode.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "eh_log.h"
#include "lr_report.h"

static void report_of(const uint8_t *data, size_t size)
{
	static FILE *null;
	struct lr_report r;
	char path[64];
	int fd = memfd_create("fuzz-log", MFD_CLOEXEC);

	if (fd < 0)
		return;
	if (!null)
		null = fopen("/dev/null", "w");
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	lr_report_init(&r);
	if (!lr_report_load(&r, path) && !lr_report_compute(&r) && null) {
		lr_report_print(&r, null);
		lr_report_json(&r, null);
	}
	lr_report_free(&r);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[2048], json[4096], enc[EH_LOG_DGRAM_MAX + 1], val[64];
	struct eh_logrec rec;
	char *buf;

	if (size > 64 * 1024)
		return 0;
	if (size && data[0] == '{') {
		report_of(data, size);
		return 0;
	}
	buf = malloc(size ? size : 1);	/* exactly size bytes, no terminator */
	if (!buf)
		abort();
	memcpy(buf, data, size);
	if (!eh_logrec_decode(buf, size, &rec)) {
		if (eh_logrec_line(&rec, line, sizeof(line)) < 0 ||
		    eh_logrec_json(&rec, "10.77.0.1:4000", json, sizeof(json)) < 0)
			abort();	/* accepted but cannot be stored */
		eh_logrec_kv_get(&rec, "run", val, sizeof(val));
		if (eh_logrec_encode(&rec, enc, sizeof(enc)) < 0)
			abort();
	}
	free(buf);
	return 0;
}
