// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Docker Engine API client over dockerd's unix socket. One CURL easy handle per
 * client, so that consecutive requests reuse the connection.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <curl/curl.h>

#include "dk.h"

#define DK_CONNECT_S	5
#define DK_SHORT_S	120	/* inspect, create, pause...: dockerd answers within this or is stuck */
#define DK_STALL_S	300	/* save/load: dockerd writes a whole image to disk before the first byte */
#define DK_BODY_MAX	(16 << 20)	/* a buffered (non-streamed) answer larger than this is refused */
#define DK_PATH_MAX	2048

struct dk {
	CURL *curl;
	char *sock;
	char api[16];
	char server[64];
	bool experimental;
	char err[512];
	char curl_err[CURL_ERROR_SIZE];

	/* the request in flight */
	const struct dk_req *req;
	long status;
	int cb_err;		/* a sink/source error, or a buffer overflow */
	char *body;		/* buffered answer (not the streamed one), NUL-terminated */
	size_t body_len, body_cap;
};

struct dk_req {
	const char *method;	/* GET POST DELETE */
	const char *path;	/* without the /vX.Y prefix, query included */
	bool unversioned;
	json_t *json;		/* request body or NULL */
	int (*sink)(void *ctx, const void *buf, size_t len);
	ssize_t (*source)(void *ctx, void *buf, size_t cap);
	void *ctx;
	long timeout_s;		/* whole request; 0: none */
	long stall_s;		/* below 1 byte/s for this long: abort; 0: none */
	bool ok_304;		/* "already in that state" is success */
	int conflict;		/* errno for 409; 0: -EBUSY */
};

static pthread_once_t dk_curl_once = PTHREAD_ONCE_INIT;
static CURLcode dk_curl_init_rc;

static void dk_curl_init(void)
{
	dk_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

__attribute__((format(printf, 2, 3)))
static void dk_seterr(struct dk *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
}

/*
 * Formats an API path where every %s argument is percent-encoded (names, ids,
 * checkpoint names, image references) and %d is a decimal int. '/' and ':'
 * stay as they are: image references carry them and dockerd's routes match
 * them unescaped.
 */
static int dk_pathf(struct dk *d, char *out, size_t cap, const char *fmt, ...)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	va_list ap;
	int err = 0;

	va_start(ap, fmt);
	for (const char *f = fmt; *f && !err; f++) {
		char num[16];
		const char *s;
		bool esc = true;

		if (*f != '%') {
			if (n + 1 >= cap)
				err = -ENAMETOOLONG;
			else
				out[n++] = *f;
			continue;
		}
		f++;
		if (*f == 's') {
			s = va_arg(ap, const char *);
			if (!s || !*s) {
				dk_seterr(d, "Empty name in request %s", fmt);
				err = -EINVAL;
				break;
			}
		} else if (*f == 'd') {
			snprintf(num, sizeof(num), "%d", va_arg(ap, int));
			s = num;
			esc = false;
		} else {
			err = -EINVAL;
			break;
		}
		for (; *s && !err; s++) {
			unsigned char c = *s;

			if (!esc || isalnum(c) || strchr("-._~:@/", c)) {
				if (n + 1 >= cap)
					err = -ENAMETOOLONG;
				else
					out[n++] = c;
			} else if (n + 3 >= cap) {
				err = -ENAMETOOLONG;
			} else {
				out[n++] = '%';
				out[n++] = hex[c >> 4];
				out[n++] = hex[c & 15];
			}
		}
	}
	va_end(ap);
	out[n] = '\0';
	if (err == -ENAMETOOLONG)
		dk_seterr(d, "Request path for %s longer than %zu bytes", fmt, cap);
	return err;
}

static size_t dk_on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct dk *d = arg;
	size_t len = size * nmemb;
	long status = 0;

	if (d->req->sink) {
		curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			int err = d->req->sink(d->req->ctx, p, len);

			if (err) {
				d->cb_err = err < 0 ? err : -EIO;
				return 0;	/* aborts the transfer */
			}
			return len;
		}
	}
	if (d->body_len + len + 1 > d->body_cap) {
		size_t cap = d->body_cap ? d->body_cap : 4096;
		char *b;

		while (cap < d->body_len + len + 1)
			cap *= 2;
		if (cap > DK_BODY_MAX) {
			d->cb_err = -EFBIG;
			return 0;
		}
		b = realloc(d->body, cap);
		if (!b) {
			d->cb_err = -ENOMEM;
			return 0;
		}
		d->body = b;
		d->body_cap = cap;
	}
	memcpy(d->body + d->body_len, p, len);
	d->body_len += len;
	d->body[d->body_len] = '\0';
	return len;
}

static size_t dk_on_read(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct dk *d = arg;
	size_t cap = size * nmemb;
	ssize_t n;

	n = d->req->source(d->req->ctx, buf, cap);
	if (n < 0 || (size_t)n > cap) {
		d->cb_err = n < 0 ? (int)n : -EINVAL;
		return CURL_READFUNC_ABORT;
	}
	return n;
}

static int dk_status_errno(long status, int conflict)
{
	switch (status) {
	case 400: return -EINVAL;
	case 401:
	case 403: return -EACCES;
	case 404: return -ENOENT;
	case 409: return conflict ? conflict : -EBUSY;
	case 500: return -EIO;
	case 501: return -EOPNOTSUPP;
	case 503: return -EAGAIN;
	default: return status >= 500 ? -EIO : -EPROTO;
	}
}

/* Docker's {"message": "..."} word for word; else the status and the body's start. */
static void dk_http_err(struct dk *d)
{
	const struct dk_req *r = d->req;
	json_t *j = NULL, *m;
	size_t n = d->body_len;

	if (n)
		j = json_loadb(d->body, n, 0, NULL);
	m = json_object_get(j, "message");
	if (json_is_string(m)) {
		snprintf(d->err, sizeof(d->err), "%s", json_string_value(m));
	} else {
		while (n && isspace((unsigned char)d->body[n - 1]))
			n--;
		dk_seterr(d, "HTTP %ld from %s %s%s%.*s", d->status, r->method, r->path,
			  n ? ": " : "", (int)(n > 200 ? 200 : n), n ? d->body : "");
	}
	json_decref(j);
}

static int dk_curl_errno(struct dk *d, CURLcode rc)
{
	const struct dk_req *r = d->req;
	long os = 0;

	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(d->curl, CURLINFO_OS_ERRNO, &os);
		if (!os)
			os = ECONNREFUSED;
		dk_seterr(d, "Couldn't connect to %s: %s", d->sock, strerror(os));
		return -os;
	case CURLE_OPERATION_TIMEDOUT:
		dk_seterr(d, "%s %s on %s timed out: %s", r->method, r->path, d->sock,
			  d->curl_err[0] ? d->curl_err : curl_easy_strerror(rc));
		return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		dk_seterr(d, "%s %s: out of memory in libcurl", r->method, r->path);
		return -ENOMEM;
	default:
		/* a body cut short is CURLE_PARTIAL_FILE or CURLE_RECV_ERROR */
		dk_seterr(d, "%s %s on %s failed: %s", r->method, r->path, d->sock,
			  d->curl_err[0] ? d->curl_err : curl_easy_strerror(rc));
		return -EIO;
	}
}

/*
 * One request. Success is a 2xx (or a 304 where r->ok_304); the answer not
 * streamed to r->sink is in d->body. Errors leave the message in d->err.
 */
static int dk_do(struct dk *d, const struct dk_req *r)
{
	struct curl_slist *hdrs = NULL;
	char url[DK_PATH_MAX + 64];
	char *json = NULL;
	CURLcode rc;
	int err = 0;

	d->req = r;
	d->status = 0;
	d->cb_err = 0;
	d->body_len = 0;
	if (d->body)
		d->body[0] = '\0';
	d->curl_err[0] = '\0';
	d->err[0] = '\0';

	if (r->unversioned)
		snprintf(url, sizeof(url), "http://localhost%s", r->path);
	else
		snprintf(url, sizeof(url), "http://localhost/v%s%s", d->api, r->path);

	curl_easy_reset(d->curl);
	curl_easy_setopt(d->curl, CURLOPT_UNIX_SOCKET_PATH, d->sock);
	curl_easy_setopt(d->curl, CURLOPT_URL, url);
	curl_easy_setopt(d->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(d->curl, CURLOPT_ERRORBUFFER, d->curl_err);
	curl_easy_setopt(d->curl, CURLOPT_CONNECTTIMEOUT, (long)DK_CONNECT_S);
	curl_easy_setopt(d->curl, CURLOPT_TIMEOUT, r->timeout_s);
	if (r->stall_s) {
		curl_easy_setopt(d->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(d->curl, CURLOPT_LOW_SPEED_TIME, r->stall_s);
	}
	curl_easy_setopt(d->curl, CURLOPT_WRITEFUNCTION, dk_on_write);
	curl_easy_setopt(d->curl, CURLOPT_WRITEDATA, d);

	if (!strcmp(r->method, "POST")) {
		struct curl_slist *add[3] = { NULL };
		int n = 0;

		curl_easy_setopt(d->curl, CURLOPT_POST, 1L);
		if (r->source) {
			/* no size given: libcurl sends the body chunked */
			curl_easy_setopt(d->curl, CURLOPT_READFUNCTION, dk_on_read);
			curl_easy_setopt(d->curl, CURLOPT_READDATA, d);
			add[n++] = curl_slist_append(hdrs, "Content-Type: application/x-tar");
			hdrs = add[n - 1] ?: hdrs;
			add[n++] = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
			hdrs = add[n - 1] ?: hdrs;
		} else if (r->json) {
			json = json_dumps(r->json, JSON_COMPACT);
			if (!json) {
				dk_seterr(d, "Couldn't encode the body of POST %s", r->path);
				err = -EINVAL;
				goto cleanup;
			}
			curl_easy_setopt(d->curl, CURLOPT_POSTFIELDS, json);
			curl_easy_setopt(d->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(json));
			add[n++] = curl_slist_append(hdrs, "Content-Type: application/json");
			hdrs = add[n - 1] ?: hdrs;
		} else {
			/* without this libcurl would read the body from stdin */
			curl_easy_setopt(d->curl, CURLOPT_POSTFIELDS, "");
			curl_easy_setopt(d->curl, CURLOPT_POSTFIELDSIZE, 0L);
			/* no form type: dockerd takes any type but JSON as a bad body */
			add[n++] = curl_slist_append(hdrs, "Content-Type:");
			hdrs = add[n - 1] ?: hdrs;
		}
		/* dockerd needs no 100-continue round trip */
		add[n++] = curl_slist_append(hdrs, "Expect:");
		hdrs = add[n - 1] ?: hdrs;
		for (int i = 0; i < n; i++)
			if (!add[i])
				err = -ENOMEM;
		if (err) {
			dk_seterr(d, "Out of memory building %s %s", r->method, r->path);
			err = -ENOMEM;
			goto cleanup;
		}
		curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, hdrs);
	} else if (strcmp(r->method, "GET")) {
		curl_easy_setopt(d->curl, CURLOPT_CUSTOMREQUEST, r->method);
	}

	rc = curl_easy_perform(d->curl);
	curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &d->status);
	if (d->cb_err) {
		err = d->cb_err;
		if (err == -EFBIG)
			dk_seterr(d, "Docker's answer to %s %s is larger than %d bytes",
				  r->method, r->path, DK_BODY_MAX);
		else if (r->sink)
			dk_seterr(d, "Sink of %s %s failed: %s", r->method, r->path, strerror(-err));
		else if (r->source)
			dk_seterr(d, "Source of %s %s failed: %s", r->method, r->path, strerror(-err));
		else
			dk_seterr(d, "%s %s: %s", r->method, r->path, strerror(-err));
		goto cleanup;
	}
	if (rc != CURLE_OK) {
		/* dockerd may refuse a streamed upload before reading all of it */
		if (rc == CURLE_SEND_ERROR && d->status >= 400) {
			err = dk_status_errno(d->status, r->conflict);
			dk_http_err(d);
			goto cleanup;
		}
		err = dk_curl_errno(d, rc);
		goto cleanup;
	}
	if ((d->status >= 200 && d->status < 300) || (d->status == 304 && r->ok_304))
		goto cleanup;
	err = dk_status_errno(d->status, r->conflict);
	dk_http_err(d);
cleanup:
	curl_slist_free_all(hdrs);
	free(json);
	return err;
}

/* d->body as JSON into *out */
static int dk_body_json(struct dk *d, json_t **out)
{
	json_error_t jerr;

	*out = json_loadb(d->body ? d->body : "", d->body_len, JSON_DECODE_ANY, &jerr);
	if (!*out) {
		dk_seterr(d, "Couldn't parse Docker's answer to %s %s: %s", d->req->method,
			  d->req->path, jerr.text);
		return -EPROTO;
	}
	return 0;
}

static int dk_copy_str(struct dk *d, json_t *obj, const char *key, char *dst, size_t cap)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (!s || !*s || strlen(s) >= cap) {
		dk_seterr(d, "Docker's answer to %s %s has no valid \"%s\"", d->req->method,
			  d->req->path, key);
		return -EPROTO;
	}
	strcpy(dst, s);
	return 0;
}

static int dk_parse_api(const char *s, unsigned int *maj, unsigned int *min)
{
	char tail;

	return sscanf(s, "%u.%u%c", maj, min, &tail) == 2 ? 0 : -EINVAL;
}

static int dk_negotiate(struct dk *d)
{
	const struct dk_req r = { .method = "GET", .path = "/version", .unversioned = true,
				  .timeout_s = DK_SHORT_S };
	unsigned int smaj, smin, wmaj, wmin, lmaj, lmin;
	const char *api, *ver;
	json_t *v = NULL, *exp;
	int err;

	err = dk_do(d, &r);
	if (err)
		return err;
	err = dk_body_json(d, &v);
	if (err)
		return err;
	api = json_string_value(json_object_get(v, "ApiVersion"));
	if (!api || dk_parse_api(api, &smaj, &smin)) {
		dk_seterr(d, "Docker at %s reports no valid ApiVersion (%s)", d->sock,
			  api ? api : "none");
		err = -EPROTO;
		goto cleanup;
	}
	dk_parse_api(DK_API_MAX, &wmaj, &wmin);
	dk_parse_api(DK_API_MIN, &lmaj, &lmin);
	if (smaj < lmaj || (smaj == lmaj && smin < lmin)) {
		dk_seterr(d, "Docker at %s speaks API %s, older than %s, the oldest edgehop supports",
			  d->sock, api, DK_API_MIN);
		err = -EPROTONOSUPPORT;
		goto cleanup;
	}
	if (smaj > wmaj || (smaj == wmaj && smin > wmin))
		snprintf(d->api, sizeof(d->api), "%s", DK_API_MAX);
	else
		snprintf(d->api, sizeof(d->api), "%u.%u", smaj, smin);
	ver = json_string_value(json_object_get(v, "Version"));
	snprintf(d->server, sizeof(d->server), "%s", ver ? ver : "");
	/* a bool at the top level; Components[].Details has it as a string */
	exp = json_object_get(v, "Experimental");
	d->experimental = json_is_true(exp);
cleanup:
	json_decref(v);
	return err;
}

int dk_open(struct dk **out, const char *sock)
{
	struct dk *d;
	int err;

	*out = NULL;
	if (!sock)
		sock = DK_SOCK_DEFAULT;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	*out = d;
	snprintf(d->api, sizeof(d->api), "%s", DK_API_MIN);
	if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		dk_seterr(d, "Socket path %s is too long", sock);
		return -ENAMETOOLONG;
	}
	d->sock = strdup(sock);
	if (!d->sock) {
		dk_seterr(d, "Out of memory");
		return -ENOMEM;
	}
	pthread_once(&dk_curl_once, dk_curl_init);
	if (dk_curl_init_rc != CURLE_OK) {
		dk_seterr(d, "Couldn't initialise libcurl: %s", curl_easy_strerror(dk_curl_init_rc));
		return -ENOMEM;
	}
	d->curl = curl_easy_init();
	if (!d->curl) {
		dk_seterr(d, "Couldn't create a libcurl handle");
		return -ENOMEM;
	}
	err = dk_negotiate(d);
	if (!err)
		d->err[0] = '\0';
	return err;
}

void dk_close(struct dk *d)
{
	if (!d)
		return;
	if (d->curl)
		curl_easy_cleanup(d->curl);
	free(d->body);
	free(d->sock);
	free(d);
}

const char *dk_err(const struct dk *d)
{
	return d ? d->err : "out of memory";
}

const char *dk_api_version(const struct dk *d)
{
	return d->api;
}

const char *dk_server_version(const struct dk *d)
{
	return d->server;
}

bool dk_experimental(const struct dk *d)
{
	return d->experimental;
}

/* --- containers ---------------------------------------------------------------- */

int dk_create(struct dk *d, const char *name, json_t *config, char id[65])
{
	struct dk_req r = { .method = "POST", .json = config, .timeout_s = DK_SHORT_S,
			    .conflict = -EEXIST };
	char path[DK_PATH_MAX];
	json_t *ans = NULL;
	int err;

	if (name)
		err = dk_pathf(d, path, sizeof(path), "/containers/create?name=%s", name);
	else
		err = dk_pathf(d, path, sizeof(path), "/containers/create");
	if (err)
		return err;
	if (!json_is_object(config)) {
		dk_seterr(d, "Container config for %s is not a JSON object", name ? name : "(unnamed)");
		return -EINVAL;
	}
	r.path = path;
	err = dk_do(d, &r);
	if (err)
		return err;
	err = dk_body_json(d, &ans);
	if (err)
		return err;
	err = dk_copy_str(d, ans, "Id", id, 65);
	json_decref(ans);
	return err;
}

/* POST /containers/{id}/<verb>[?query] with an empty body */
static int dk_post_verb(struct dk *d, const struct dk_req *tmpl, const char *path)
{
	struct dk_req r = *tmpl;

	r.method = "POST";
	r.path = path;
	return dk_do(d, &r);
}

int dk_start(struct dk *d, const char *id, const char *checkpoint)
{
	/* a restore from a checkpoint takes as long as CRIU needs: no total timeout */
	const struct dk_req r = { .timeout_s = 0, .ok_304 = true };
	char path[DK_PATH_MAX];
	int err;

	if (!checkpoint)
		return dk_start_timed(d, id, DK_SHORT_S);
	err = dk_pathf(d, path, sizeof(path), "/containers/%s/start?checkpoint=%s", id,
		       checkpoint);
	return err ? err : dk_post_verb(d, &r, path);
}

int dk_start_timed(struct dk *d, const char *id, int timeout_s)
{
	const struct dk_req r = { .timeout_s = timeout_s, .ok_304 = true };
	char path[DK_PATH_MAX];
	int err;

	err = dk_pathf(d, path, sizeof(path), "/containers/%s/start", id);
	return err ? err : dk_post_verb(d, &r, path);
}

int dk_stop(struct dk *d, const char *id, int timeout_s)
{
	const struct dk_req r = {
		.timeout_s = timeout_s >= 0 ? timeout_s + DK_SHORT_S : 0, .ok_304 = true };
	char path[DK_PATH_MAX];
	int err;

	if (timeout_s >= 0)
		err = dk_pathf(d, path, sizeof(path), "/containers/%s/stop?t=%d", id, timeout_s);
	else
		err = dk_pathf(d, path, sizeof(path), "/containers/%s/stop", id);
	return err ? err : dk_post_verb(d, &r, path);
}

int dk_kill(struct dk *d, const char *id, const char *signal)
{
	const struct dk_req r = { .timeout_s = DK_SHORT_S };
	char path[DK_PATH_MAX];
	int err;

	err = dk_pathf(d, path, sizeof(path), "/containers/%s/kill?signal=%s", id,
		       signal ? signal : "SIGKILL");
	return err ? err : dk_post_verb(d, &r, path);
}

int dk_remove(struct dk *d, const char *id, bool force)
{
	struct dk_req r = { .method = "DELETE", .timeout_s = DK_SHORT_S };
	char path[DK_PATH_MAX];
	int err;

	err = dk_pathf(d, path, sizeof(path), "/containers/%s?v=1&force=%d", id, force ? 1 : 0);
	if (err)
		return err;
	r.path = path;
	return dk_do(d, &r);
}

int dk_pause(struct dk *d, const char *id)
{
	const struct dk_req r = { .timeout_s = DK_SHORT_S };
	char path[DK_PATH_MAX];
	int err;

	err = dk_pathf(d, path, sizeof(path), "/containers/%s/pause", id);
	return err ? err : dk_post_verb(d, &r, path);
}

int dk_unpause(struct dk *d, const char *id)
{
	const struct dk_req r = { .timeout_s = DK_SHORT_S };
	char path[DK_PATH_MAX];
	int err;

	err = dk_pathf(d, path, sizeof(path), "/containers/%s/unpause", id);
	return err ? err : dk_post_verb(d, &r, path);
}

int dk_wait(struct dk *d, const char *id, int *exit_code)
{
	const struct dk_req r = { 0 };	/* as long as the container runs */
	char path[DK_PATH_MAX];
	json_t *ans = NULL, *code, *msg;
	int err;

	err = dk_pathf(d, path, sizeof(path), "/containers/%s/wait?condition=not-running", id);
	if (!err)
		err = dk_post_verb(d, &r, path);
	if (!err)
		err = dk_body_json(d, &ans);
	if (err)
		return err;
	msg = json_object_get(json_object_get(ans, "Error"), "Message");
	code = json_object_get(ans, "StatusCode");
	if (json_is_string(msg) && *json_string_value(msg)) {
		dk_seterr(d, "%s", json_string_value(msg));
		err = -EIO;
	} else if (!json_is_integer(code)) {
		dk_seterr(d, "Docker's answer to POST %s has no StatusCode", path);
		err = -EPROTO;
	} else if (exit_code) {
		*exit_code = (int)json_integer_value(code);
	}
	json_decref(ans);
	return err;
}

static int dk_get_json(struct dk *d, const char *path, json_t **out)
{
	const struct dk_req r = { .method = "GET", .path = path, .timeout_s = DK_SHORT_S };
	int err;

	*out = NULL;
	err = dk_do(d, &r);
	return err ? err : dk_body_json(d, out);
}

int dk_inspect(struct dk *d, const char *id, json_t **out)
{
	char path[DK_PATH_MAX];
	int err;

	*out = NULL;
	err = dk_pathf(d, path, sizeof(path), "/containers/%s/json", id);
	return err ? err : dk_get_json(d, path, out);
}

int dk_container_list(struct dk *d, const char *label, json_t **out)
{
	char path[DK_PATH_MAX];
	json_t *f;
	char *filters;
	int err;

	*out = NULL;
	if (!label || !*label) {
		dk_seterr(d, "Empty label filter");
		return -EINVAL;
	}
	f = json_pack("{s:[s]}", "label", label);
	filters = f ? json_dumps(f, JSON_COMPACT) : NULL;
	json_decref(f);
	if (!filters)
		return -ENOMEM;
	/* the filter's JSON is escaped as a query value by dk_pathf */
	err = dk_pathf(d, path, sizeof(path), "/containers/json?all=1&filters=%s", filters);
	free(filters);
	if (!err)
		err = dk_get_json(d, path, out);
	if (!err && !json_is_array(*out)) {
		json_decref(*out);
		*out = NULL;
		dk_seterr(d, "Container list is not an array");
		err = -EBADMSG;
	}
	return err;
}

int dk_info(struct dk *d, json_t **out)
{
	char path[DK_PATH_MAX];
	int err;

	*out = NULL;
	err = dk_pathf(d, path, sizeof(path), "/info");
	return err ? err : dk_get_json(d, path, out);
}

/* --- checkpoints ---------------------------------------------------------------- */

int dk_checkpoint_create(struct dk *d, const char *id, const char *name, bool leave_running)
{
	struct dk_req r = { .method = "POST", .timeout_s = 0 /* CRIU dumps all memory */,
			    .conflict = -EEXIST };
	char path[DK_PATH_MAX];
	json_t *body;
	int err;

	err = dk_pathf(d, path, sizeof(path), "/containers/%s/checkpoints", id);
	if (err)
		return err;
	body = json_pack("{s:s, s:b}", "CheckpointID", name, "Exit", !leave_running);
	if (!body) {
		dk_seterr(d, "Couldn't build the checkpoint request for %s", id);
		return -ENOMEM;
	}
	r.path = path;
	r.json = body;
	err = dk_do(d, &r);
	json_decref(body);
	return err;
}

int dk_checkpoint_list(struct dk *d, const char *id, json_t **out)
{
	char path[DK_PATH_MAX];
	int err;

	*out = NULL;
	err = dk_pathf(d, path, sizeof(path), "/containers/%s/checkpoints", id);
	if (!err)
		err = dk_get_json(d, path, out);
	if (err)
		return err;
	/* Docker 20.10 answers "null" when there is none */
	if (json_is_null(*out)) {
		json_decref(*out);
		*out = json_array();
		return *out ? 0 : -ENOMEM;
	}
	if (!json_is_array(*out)) {
		json_decref(*out);
		*out = NULL;
		dk_seterr(d, "Docker's checkpoint list of %s is not an array", id);
		return -EPROTO;
	}
	return 0;
}

int dk_checkpoint_delete(struct dk *d, const char *id, const char *name)
{
	struct dk_req r = { .method = "DELETE", .timeout_s = DK_SHORT_S };
	char path[DK_PATH_MAX];
	int err;

	err = dk_pathf(d, path, sizeof(path), "/containers/%s/checkpoints/%s", id, name);
	if (err)
		return err;
	r.path = path;
	return dk_do(d, &r);
}

/* --- images ---------------------------------------------------------------------- */

int dk_commit(struct dk *d, const char *id, const char *repo_tag, bool pause, char image_id[80])
{
	/* commit writes the container's whole upper layer: no total timeout */
	struct dk_req r = { .method = "POST" };
	char path[DK_PATH_MAX], repo[512];
	const char *slash, *colon = NULL;
	json_t *ans = NULL;
	int err;

	if (repo_tag) {
		slash = strrchr(repo_tag, '/');
		colon = strrchr(slash ? slash : repo_tag, ':');
		if ((colon ? (size_t)(colon - repo_tag) : strlen(repo_tag)) >= sizeof(repo)) {
			dk_seterr(d, "Image name %s is too long", repo_tag);
			return -ENAMETOOLONG;
		}
		snprintf(repo, sizeof(repo), "%.*s",
			 (int)(colon ? colon - repo_tag : (ptrdiff_t)strlen(repo_tag)), repo_tag);
	}
	if (repo_tag && colon)
		err = dk_pathf(d, path, sizeof(path), "/commit?container=%s&repo=%s&tag=%s&pause=%d",
			       id, repo, colon + 1, pause ? 1 : 0);
	else if (repo_tag)
		err = dk_pathf(d, path, sizeof(path), "/commit?container=%s&repo=%s&pause=%d",
			       id, repo, pause ? 1 : 0);
	else
		err = dk_pathf(d, path, sizeof(path), "/commit?container=%s&pause=%d", id,
			       pause ? 1 : 0);
	if (err)
		return err;
	r.path = path;
	err = dk_do(d, &r);
	if (!err)
		err = dk_body_json(d, &ans);
	if (!err)
		err = dk_copy_str(d, ans, "Id", image_id, 80);
	json_decref(ans);
	return err;
}

int dk_image_inspect(struct dk *d, const char *name, json_t **out)
{
	char path[DK_PATH_MAX];
	int err;

	*out = NULL;
	err = dk_pathf(d, path, sizeof(path), "/images/%s/json", name);
	return err ? err : dk_get_json(d, path, out);
}

int dk_image_list(struct dk *d, json_t **out)
{
	char path[DK_PATH_MAX];
	int err;

	*out = NULL;
	err = dk_pathf(d, path, sizeof(path), "/images/json");
	return err ? err : dk_get_json(d, path, out);
}

int dk_image_remove(struct dk *d, const char *name, bool force)
{
	struct dk_req r = { .method = "DELETE", .timeout_s = DK_SHORT_S };
	char path[DK_PATH_MAX];
	int err;

	err = dk_pathf(d, path, sizeof(path), "/images/%s?force=%d", name, force ? 1 : 0);
	if (err)
		return err;
	r.path = path;
	return dk_do(d, &r);
}

int dk_image_save(struct dk *d, const char *name,
		  int (*sink)(void *ctx, const void *buf, size_t len), void *ctx)
{
	struct dk_req r = { .method = "GET", .sink = sink, .ctx = ctx, .stall_s = DK_STALL_S };
	char path[DK_PATH_MAX];
	int err;

	err = dk_pathf(d, path, sizeof(path), "/images/get?names=%s", name);
	if (err)
		return err;
	r.path = path;
	return dk_do(d, &r);
}

/* "Loaded image: ref\n" or "Loaded image ID: sha256:...\n" -> ref */
static bool dk_loaded_ref(const char *s, char *out, size_t cap)
{
	static const char *const pfx[] = { "Loaded image: ", "Loaded image ID: " };
	size_t n;

	for (size_t i = 0; i < sizeof(pfx) / sizeof(pfx[0]); i++) {
		if (strncmp(s, pfx[i], strlen(pfx[i])))
			continue;
		s += strlen(pfx[i]);
		n = strlen(s);
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (out && cap)
			snprintf(out, cap, "%.*s", (int)n, s);
		return true;
	}
	return false;
}

int dk_image_load(struct dk *d, ssize_t (*source)(void *ctx, void *buf, size_t cap), void *ctx,
		  char *loaded, size_t loaded_len)
{
	const struct dk_req r = { .method = "POST", .path = "/images/load?quiet=1",
				  .source = source, .ctx = ctx, .stall_s = DK_STALL_S };
	bool found = false;
	size_t off = 0;
	int err;

	if (loaded && loaded_len)
		loaded[0] = '\0';
	err = dk_do(d, &r);
	if (err)
		return err;
	/* a stream of JSON messages: {"stream": ...} or {"errorDetail": {...}, "error": ...} */
	while (off < d->body_len) {
		json_error_t jerr;
		json_t *m, *e;
		const char *s;

		while (off < d->body_len && isspace((unsigned char)d->body[off]))
			off++;
		if (off == d->body_len)
			break;
		m = json_loadb(d->body + off, d->body_len - off, JSON_DISABLE_EOF_CHECK, &jerr);
		if (!m) {
			dk_seterr(d, "Couldn't parse Docker's answer to POST %s at byte %zu: %s",
				  r.path, off, jerr.text);
			return -EPROTO;
		}
		off += jerr.position;
		e = json_object_get(json_object_get(m, "errorDetail"), "message");
		if (!json_is_string(e))
			e = json_object_get(m, "error");
		s = json_string_value(json_object_get(m, "stream"));
		if (json_is_string(e)) {
			dk_seterr(d, "%s", json_string_value(e));
			err = -EIO;
		} else if (s && !found) {
			found = dk_loaded_ref(s, loaded, loaded_len);
		}
		json_decref(m);
		if (err)
			return err;
	}
	if (!found) {
		dk_seterr(d, "Docker's answer to POST %s names no loaded image", r.path);
		return -EPROTO;
	}
	return 0;
}
