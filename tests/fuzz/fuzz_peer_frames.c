// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the peer channel's frame parser: the input is what a
 * peer sent inside TLS (the first byte picks message or stream reading). The
 * library is built with -DPEER_FUZZ, which adds a connection without TLS.
 *
 *   make build/fuzz/fuzz_peer_frames
 *   tests/fuzz/run fuzz_peer_frames   (seeds: tests/fuzz/corpus/fuzz_peer_frames/)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"
#include "peer_wire.h"

static void quiet(int prio, const char *msg, void *arg)
{
	(void)prio;
	(void)msg;
	(void)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peer_rstream *r = NULL;
	struct peer_conn *pc = NULL;
	static uint8_t buf[4096];
	json_t *m;
	int sv[2], stream;
	ssize_t n;

	/* Whole input in the socket buffer before reading: no second thread. */
	if (size < 1 || size > 64 * 1024)
		return 0;
	peer_set_log(quiet, NULL);
	stream = data[0] & 1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 0;
	if (write(sv[0], data + 1, size - 1) != (ssize_t)(size - 1))
		abort();
	close(sv[0]);
	if (peer_conn_plain(sv[1], &pc)) {
		close(sv[1]);
		return 0;
	}
	if (stream && !peer_rstream_begin(pc, &r)) {
		do
			n = peer_rstream_read(r, buf, 1 + data[0] % sizeof(buf));
		while (n > 0);
		peer_rstream_end(r, NULL);
	}
	while (!peer_recv_msg(pc, &m))
		json_decref(m);
	peer_close(pc);
	return 0;
}
