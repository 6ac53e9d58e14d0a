// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <openssl/evp.h>

#include "eh_digest.h"

int eh_digest_step(const uint8_t prev[EH_DIGEST_LEN], uint32_t seq,
		   const void *payload, size_t len, uint8_t next[EH_DIGEST_LEN])
{
	uint8_t out[EVP_MAX_MD_SIZE];
	uint32_t be_seq = htonl(seq);
	unsigned int outlen = 0;
	EVP_MD_CTX *ctx;
	int err = -EIO;

	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, prev, EH_DIGEST_LEN) != 1 ||
	    EVP_DigestUpdate(ctx, &be_seq, sizeof(be_seq)) != 1 ||
	    (len && EVP_DigestUpdate(ctx, payload, len) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, &outlen) != 1 ||
	    outlen != EH_DIGEST_LEN)
		goto cleanup;
	memcpy(next, out, EH_DIGEST_LEN);
	err = 0;
cleanup:
	EVP_MD_CTX_free(ctx);
	return err;
}

uint64_t eh_offload_result(uint32_t seq, const void *payload, size_t len)
{
	const uint8_t *p = payload;
	uint64_t h = 0xcbf29ce484222325ull ^ seq;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	/* splitmix64 finaliser, so that neighbouring seqs differ in every bit */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void eh_payload_fill(uint32_t mud_id, uint32_t seq, void *buf, size_t len)
{
	uint64_t s = ((uint64_t)mud_id << 32) | seq, v = 0;
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = splitmix64(&s);
		p[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
}

void eh_digest_hex(const uint8_t d[EH_DIGEST_LEN], char *out)
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < EH_DIGEST_LEN; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * EH_DIGEST_LEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int eh_digest_parse(const char *hex, uint8_t d[EH_DIGEST_LEN])
{
	int i, hi, lo;

	if (!hex || strlen(hex) != 2 * EH_DIGEST_LEN)
		return -EINVAL;
	for (i = 0; i < EH_DIGEST_LEN; i++) {
		hi = hexval(hex[2 * i]);
		lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		d[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
