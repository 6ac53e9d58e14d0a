// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the MUD's answer handling (mud_handle_answer in
 * mud/answers.c, linked with the MUD's other parts but main.c). A MUD with 64 requests
 * outstanding gets the input as one datagram; the first byte picks whether
 * it comes from the service address. Every counter must stay consistent.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "eh_digest.h"
#include "mud.h"

#define FUZZ_REQS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t expect[FUZZ_REQS][EH_DIGEST_LEN];
	static struct mud *m;
	static struct req *reqs;
	struct sockaddr_in src;
	uint8_t *pkt;

	static int null = -1, err_fd = -1;

	if (!m) {
		uint8_t chain[EH_DIGEST_LEN] = {}, pl[EH_BODY_MAX];

		null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		err_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
		if (null < 0 || err_fd < 0)
			abort();
		m = calloc(1, sizeof(*m));
		reqs = calloc(FUZZ_REQS, sizeof(*reqs));
		if (!m || !reqs)
			abort();
		for (uint32_t i = 0; i < FUZZ_REQS; i++) {
			eh_payload_fill(1, i, pl, 64);
			eh_digest_step(chain, i, pl, 64, chain);
			memcpy(expect[i], chain, EH_DIGEST_LEN);
		}
	}
	memset(m, 0, sizeof(*m));
	memset(reqs, 0, FUZZ_REQS * sizeof(*reqs));
	m->fd = m->agent_fd = m->probe_fd = -1;
	m->log.fd = -1;
	m->mud_id = 1;
	m->count = FUZZ_REQS;
	m->payload_bytes = 64;
	m->run = "fuzz";
	m->name = "USER";
	m->svc.sin_family = AF_INET;
	m->svc.sin_port = htons(7777);
	m->svc.sin_addr.s_addr = htonl(0x0a000001);
	snprintf(m->svc_str, sizeof(m->svc_str), "10.0.0.1");
	m->reqs = reqs;
	for (uint32_t i = 0; i < FUZZ_REQS; i++) {
		memcpy(reqs[i].expect, expect[i], EH_DIGEST_LEN);
		reqs[i].tries = 1;
		m->outstanding[i % MAX_WINDOW] = i;
	}
	m->next = FUZZ_REQS;
	m->nout = MAX_WINDOW;
	mud_phase_begin(m, MUD_PH_DURING, 1);
	memcpy(m->pre_server, "CT-x", 5);
	m->epoch = 1;
	memcpy(m->epoch_pre[1], "CT-x", 5);

	if (size < 1)
		return 0;
	src = m->svc;
	if (data[0] & 1)
		src.sin_port = htons(7778);
	/* twice: a second answer is a duplicate, another path */
	pkt = malloc(size);
	if (!pkt)
		abort();
	memcpy(pkt, data + 1, size - 1);
	dup2(null, 2);		/* the MUD's mismatch and foreign reports */
	mud_handle_answer(m, pkt, (ssize_t)size - 1, &src);
	mud_handle_answer(m, pkt, (ssize_t)size - 1, &src);
	dup2(err_fd, 2);	/* libFuzzer's and the sanitizers' reports */
	free(pkt);
	if (m->answered > FUZZ_REQS || m->forwarded > m->answered ||
	    m->mismatches > FUZZ_REQS || m->nout > MAX_WINDOW ||
	    m->nphases > MAX_PHASES)
		abort();
	return 0;
}
