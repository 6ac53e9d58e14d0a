// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * edgehop-mud: the mobile user device emulator.
 *
 * Associates with its first AP, sends offload requests (seq from --start-seq)
 * to the service address at a fixed rate, retries unanswered ones, checks
 * every answer against the digest chain it computes itself, hands off to
 * other APs on a schedule (REASSOCIATION REQUEST + route to the VIP through
 * the new AP's gateway), reports every SVCQ/SVCR to logrepo and ends with a
 * report. Exit status: 0 only with nothing lost, no mismatch, no failed
 * handoff, and no answer from anywhere but the service address.
 *
 * The request socket is not connected: the source address of each request
 * is picked per datagram from the route to the VIP, which a handoff moves to
 * another AP's cell (another address). So the MUD checks every answer's
 * source itself: one not from VIP:port is counted as foreign and fails the
 * run (it shows a dataplane that answered from the backend's address).
 *
 * This file sets up, runs and reports; mud.h lists the other parts.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "eh_digest.h"
#include "eh_log.h"
#include "eh_time.h"
#include "mud.h"

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		mud_finish = 1;
	else
		mud_stop = 1;
}

int main(int argc, char **argv)
{
	struct mud *m = calloc(1, sizeof(*m));
	struct sigaction sig;
	char runbuf[32];
	uint64_t t0;
	double ho_ms = 0, elapsed;
	int err = 0, rcvbuf = 4 << 20, rc;

	if (!m)
		return 1;
	m->fd = m->agent_fd = m->probe_fd = -1;
	m->log.fd = -1;
	if (mud_parse_args(m, argc, argv)) {
		free(m);
		return 2;
	}
	if (!m->run) {
		snprintf(runbuf, sizeof(runbuf), "%u-%llu", m->mud_id,
			 (unsigned long long)(eh_real_ns() / 1000000));
		m->run = runbuf;
	}
	memset(&sig, 0, sizeof(sig));
	sig.sa_handler = on_signal;
	sigaction(SIGTERM, &sig, NULL);
	sigaction(SIGINT, &sig, NULL);
	sigaction(SIGUSR1, &sig, NULL);

	memcpy(m->chain, m->init_digest, EH_DIGEST_LEN);
	mud_phase_begin(m, m->nho ? MUD_PH_BEFORE : MUD_PH_ALL, 0);
	m->reqs = calloc(m->count ? m->count : 1, sizeof(*m->reqs));
	m->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	m->agent_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	m->probe_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!m->reqs || m->fd < 0 || m->agent_fd < 0 || m->probe_fd < 0) {
		err = -errno ?: -ENOMEM;
		fprintf(stderr, "edgehop-mud: setting up: %s\n", strerror(-err));
		goto cleanup;
	}
	setsockopt(m->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

	if (m->naps) {
		err = mud_associate(m, 0, false, &ho_ms);
		if (err) {
			if (err == -ECONNREFUSED)
				fprintf(stderr, "edgehop-mud: ASSOCIATION with %s refused: %s\n",
					m->aps[0].name, m->assoc_error);
			else
				fprintf(stderr, "edgehop-mud: ASSOCIATION with %s failed: %s\n",
					m->aps[0].name, strerror(-err));
			goto cleanup;
		}
		err = mud_move_route(m, 0);
		if (err)
			goto cleanup;
	}

	t0 = eh_mono_ns();
	err = mud_run(m);
	elapsed = (eh_mono_ns() - t0) / 1e9;
	mud_report_compute(m);
	eh_log_event(&m->log, NULL, NULL, "MUD REPORT", NULL, NULL,
		     "run=%s mud=%u sent=%u answered=%llu lost=%llu dups=%llu mismatches=%llu",
		     m->run, m->mud_id, m->next, (unsigned long long)m->answered,
		     (unsigned long long)m->lost, (unsigned long long)m->dup_answers,
		     (unsigned long long)m->mismatches);
	mud_report(m, elapsed, stdout, false);
	if (m->json_path) {
		FILE *f = fopen(m->json_path, "w");

		if (!f) {
			fprintf(stderr, "edgehop-mud: cannot write %s: %s\n",
				m->json_path, strerror(errno));
			err = err ?: -errno;
		} else {
			mud_report(m, elapsed, f, true);
			fclose(f);
		}
	}
	if (err == -EINTR)
		fprintf(stderr, "edgehop-mud: interrupted after %u requests\n", m->next);
cleanup:
	if (m->foreign || m->bad_answers)
		fprintf(stderr, "edgehop-mud: %llu foreign datagram(s) and %llu bad answer(s) from the service address: a dataplane or service fault\n",
			(unsigned long long)m->foreign, (unsigned long long)m->bad_answers);
	rc = err || m->lost || m->mismatches || m->handoff_failures || m->stale_errors ||
	     m->foreign || m->bad_answers || m->next < m->count;
	if (m->fd >= 0)
		close(m->fd);
	if (m->agent_fd >= 0)
		close(m->agent_fd);
	if (m->probe_fd >= 0)
		close(m->probe_fd);
	eh_log_close(&m->log);
	for (int p = 0; p < m->nphases; p++)
		free(m->phases[p].rtt_ms);
	free(m->reqs);
	free(m);
	return rc ? 1 : 0;
}

