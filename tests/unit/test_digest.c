// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The digest chain against vectors computed independently (Python hashlib). */
#include <errno.h>
#include <string.h>

#include "eh_digest.h"
#include "tap.h"

int main(void)
{
	uint8_t d[EH_DIGEST_LEN] = {}, e[EH_DIGEST_LEN], back[EH_DIGEST_LEN];
	uint8_t p1[64], p2[64];
	char hex[2 * EH_DIGEST_LEN + 1];
	int err;

	tap_plan(11);

	err = eh_digest_step(d, 0, "abc", 3, d);
	eh_digest_hex(d, hex);
	tap_ok(!err && !strcmp(hex, "d0fb806071f3e76a75ee64b71fe2bba9cabd3c722d6c1cca0cdfa934172faf7e"),
	       "d1 = SHA256(0^32 || be32(0) || \"abc\") (got %s)", hex);
	err = eh_digest_step(d, 1, NULL, 0, e);
	eh_digest_hex(e, hex);
	tap_ok(!err && !strcmp(hex, "4846fbcc5e3fb5c6eb71e0d49cc6daa85f9d4252ae3fe4c411fe298a15547017"),
	       "d2 chains on d1 with seq 1 and an empty payload (got %s)", hex);

	memset(d, 0, sizeof(d));
	eh_digest_step(d, 1, "abc", 3, e);
	eh_digest_hex(e, hex);
	tap_ok(!strcmp(hex, "54bb1aab0ca598d6efbda8b0139d47b3ae00dd114fd0cb76fd97f08c1829bf9b"),
	       "the seq is part of the digest (seq 1 differs from seq 0)");

	tap_ok(eh_digest_parse(hex, back) == 0 && !memcmp(back, e, sizeof(e)),
	       "hex round-trips");
	tap_ok(eh_digest_parse("xyz", back) == -EINVAL, "short hex is refused");
	hex[5] = 'g';
	tap_ok(eh_digest_parse(hex, back) == -EINVAL, "non-hex digit is refused");

	eh_payload_fill(7, 3, p1, sizeof(p1));
	eh_payload_fill(7, 3, p2, sizeof(p2));
	tap_ok(!memcmp(p1, p2, sizeof(p1)), "payload is deterministic");
	eh_payload_fill(7, 4, p2, sizeof(p2));
	tap_ok(memcmp(p1, p2, sizeof(p1)), "payload differs per seq");
	eh_payload_fill(8, 3, p2, sizeof(p2));
	tap_ok(memcmp(p1, p2, sizeof(p1)), "payload differs per MUD");

	tap_ok(eh_offload_result(3, p1, 64) == eh_offload_result(3, p1, 64),
	       "offload result is deterministic");
	tap_ok(eh_offload_result(3, p1, 64) != eh_offload_result(4, p1, 64),
	       "offload result depends on seq");
	return tap_done();
}
