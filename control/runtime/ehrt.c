// SPDX-License-Identifier: GPL-2.0
/*
 * edgehop-runc's command-line logic (ehrt.h): which runc call this is, and the
 * restore call a staged create becomes. No I/O here: the unit test drives it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ehrt.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* runc's global options that take a value (runc 1.1: main.go). */
static bool global_takes_value(const char *a)
{
	static const char *const v[] = { "--root", "--log", "--log-format", "--criu",
					 "--rootless", NULL };

	for (int i = 0; v[i]; i++)
		if (!strcmp(a, v[i]))
			return true;
	return false;
}

/* Options of create/start that take a value (runc 1.1 and 1.2: create.go). */
static bool create_takes_value(const char *a)
{
	static const char *const v[] = { "--bundle", "-b", "--console-socket", "--pid-file",
					 "--preserve-fds", "--pidfd-socket", NULL };

	for (int i = 0; v[i]; i++)
		if (!strcmp(a, v[i]))
			return true;
	return false;
}

int ehrt_valid_id(const char *id)
{
	size_t n = strlen(id);

	if (!n || n > 128 || !strcmp(id, ".") || !strcmp(id, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

int ehrt_parse(int argc, char *const argv[], struct ehrt_plan *p, char *err, size_t errlen)
{
	int i;

	memset(p, 0, sizeof(*p));
	p->sub = -1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-')
			break;
		if (!strcmp(a, "--"))
			return fail(err, errlen, "'--' before the command");
		if (global_takes_value(a)) {
			if (i + 1 >= argc)
				return fail(err, errlen, "option %s needs a value", a);
			i++;
		}
	}
	if (i >= argc)
		return 0;	/* runc --version, runc --help: runc answers */
	p->sub = i;
	if (strcmp(argv[i], "create") && strcmp(argv[i], "start"))
		return 0;
	/* The container id: the first operand after the subcommand's options. */
	for (i++; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-' || !strcmp(a, "-"))
			break;
		if (!strchr(a, '=') && create_takes_value(a)) {
			if (i + 1 >= argc)
				return fail(err, errlen, "option %s needs a value", a);
			i++;
		}
	}
	if (i >= argc)
		return 0;	/* runc says what is missing */
	if (!ehrt_valid_id(argv[i]))
		return 0;	/* not a name we could have staged: runc judges it */
	p->id = argv[i];
	p->cmd = !strcmp(argv[p->sub], "create") ? EHRT_RESTORE : EHRT_START_NOOP;
	return 0;
}

/* "--opt=value" or "--opt value": the value of option a (at argv[*i]). */
static const char *opt_value(int argc, char *const argv[], int *i, const char *name)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (!strncmp(a, name, n) && a[n] == '=')
		return a + n + 1;
	if (!strcmp(a, name) && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

static bool is_opt(const char *a, const char *name)
{
	size_t n = strlen(name);

	return !strcmp(a, name) || (!strncmp(a, name, n) && a[n] == '=');
}

int ehrt_restore_argv(int argc, char *const argv[], const struct ehrt_plan *p,
		      const char *runc, const char *stage, char **out, int cap, char *buf,
		      size_t buflen, char *err, size_t errlen)
{
	int n = 0, i, w;
	char *img, *work;

#define PUT(s)								\
	do {								\
		if (n + 2 > cap)					\
			return fail(err, errlen, "too many arguments"), -E2BIG; \
		out[n++] = (char *)(s);					\
	} while (0)

	if (p->cmd != EHRT_RESTORE || !p->id || p->sub < 1)
		return fail(err, errlen, "not a create of a container");
	w = snprintf(buf, buflen, "%s/%s/img", stage, p->id);
	if (w < 0 || (size_t)w >= buflen / 2)
		return fail(err, errlen, "staging path too long"), -ENAMETOOLONG;
	img = buf;
	work = buf + w + 1;
	w = snprintf(work, buflen - (w + 1), "%s/%s/work", stage, p->id);
	if (w < 0 || (size_t)w >= buflen - (size_t)(work - buf))
		return fail(err, errlen, "staging path too long"), -ENAMETOOLONG;

	PUT(runc);
	for (i = 1; i < p->sub; i++)
		PUT(argv[i]);
	PUT("restore");
	PUT("--detach");
	PUT("--no-subreaper");	/* the shim is the subreaper, as after a create */
	PUT("--image-path");
	PUT(img);
	PUT("--work-path");
	PUT(work);
	for (i = p->sub + 1; i < argc; i++) {
		const char *a = argv[i], *v;

		if (a == p->id)
			break;
		if (is_opt(a, "--no-new-keyring"))
			continue;	/* restore makes no session keyring anyway */
		if (is_opt(a, "--preserve-fds")) {
			v = opt_value(argc, argv, &i, "--preserve-fds");
			if (!v || strcmp(v, "0"))
				return fail(err, errlen,
					    "edgehop-runc: --preserve-fds %s: a restored container "
					    "cannot be given extra descriptors", v ? v : "");
			continue;
		}
		if (is_opt(a, "--pidfd-socket"))
			return fail(err, errlen,
				    "edgehop-runc: --pidfd-socket: runc restore has no such option");
		PUT(a);
		if (!strchr(a, '=') && create_takes_value(a) && i + 1 < argc)
			PUT(argv[++i]);
	}
	PUT(p->id);
	out[n] = NULL;
	return n;
#undef PUT
}
