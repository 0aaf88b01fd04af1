// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libuv struct layouts, read from profiles/libuv/<version>.json (generated
 * from each version's uv.h by scripts/gen-profile.py). A version without a
 * profile is refused, naming the closest one: a guessed layout would print
 * garbage with confidence.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "uvscope.h"

/* No libuv struct comes near this (uv_getnameinfo_t, the largest, has
 * 1320 bytes): a larger size is a broken profile. */
#define UVS_LAYOUT_MAX_SIZE 65536

struct uvs_layout {
	char version[32];
	char path[PATH_MAX];
	json_t *doc;
};

/* Where profiles live: $UVSCOPE_PROFILES, beside the binary (a build
 * tree), or where `make install` puts them. */
static int uvs__profiles_dir(char *out, size_t len)
{
	static const char *const sys[] = {
		"/usr/local/share/uvscope/profiles", "/usr/share/uvscope/profiles",
	};
	const char *env = getenv("UVSCOPE_PROFILES");
	char exe[PATH_MAX], cand[PATH_MAX + 32];
	ssize_t n;
	size_t i;

	if (env) {
		snprintf(out, len, "%s", env);
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	/* beside the binary, or one up (.output/uvscope-asan) */
	for (i = 0; n > 0 && i < 2; i++) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (!slash)
			break;
		*slash = '\0';
		n = slash - exe;
		snprintf(cand, sizeof(cand), "%s/profiles/libuv", exe);
		if (!access(cand, R_OK)) {
			snprintf(out, len, "%s/profiles", exe);
			return 0;
		}
	}
	for (i = 0; i < 2; i++) {
		snprintf(cand, sizeof(cand), "%s/libuv", sys[i]);
		if (!access(cand, R_OK)) {
			snprintf(out, len, "%s", sys[i]);
			return 0;
		}
	}
	return -ENOENT;
}

static long uvs__vnum(const char *v)
{
	unsigned a = 0, b = 0, c = 0;

	if (sscanf(v, "%u.%u.%u", &a, &b, &c) != 3)
		return -1;
	return (long)a * 1000000 + b * 1000 + c;
}

/* The profile nearest to want: same major, nearest minor then patch,
 * the older on a tie. */
static void uvs__closest(const char *dir, const char *want, char *out,
			 size_t len)
{
	long w = uvs__vnum(want), best = -1, bd = LONG_MAX;
	struct dirent *de;
	char path[PATH_MAX];
	DIR *d;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/libuv", dir);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		long v = uvs__vnum(de->d_name), dist;

		if (v < 0 || !strstr(de->d_name, ".json"))
			continue;
		dist = labs(v - w) * 2 + (v > w);
		if (dist < bd) {
			bd = dist;
			best = v;
			snprintf(out, len, "%.*s", (int)(strlen(de->d_name) - 5),
				 de->d_name);
		}
	}
	closedir(d);
	(void)best;
}

/* Whether doc is a layout profile whose numbers can be used: every
 * member inside its struct, sizes that a struct can have. Readers add
 * offsets to addresses in the target without checking them again. */
static int uvs__layout_check(const char *path, json_t *doc)
{
	json_t *structs = json_object_get(doc, "structs");
	json_t *enums = json_object_get(doc, "enums");
	json_t *st, *fields, *f, *e, *v;
	const char *sn, *fn, *en, *vn;

	if (strcmp(json_string_value(json_object_get(doc, "schema")) ?: "",
		   "uvscope-libuv-layout/1") ||
	    !json_is_object(structs) || (enums && !json_is_object(enums)))
		return uvs_seterr(-EINVAL, "%s: not a uvscope layout profile",
				  path);
	json_object_foreach(structs, sn, st) {
		json_t *size = json_object_get(st, "size");
		json_int_t sz;

		fields = json_object_get(st, "fields");
		if (!json_is_integer(size) || !json_is_object(fields))
			return uvs_seterr(-EINVAL, "%s: %s: no size or fields",
					  path, sn);
		sz = json_integer_value(size);
		if (sz <= 0 || sz > UVS_LAYOUT_MAX_SIZE)
			return uvs_seterr(-EINVAL, "%s: %s: size %lld", path,
					  sn, (long long)sz);
		json_object_foreach(fields, fn, f) {
			json_t *o = json_object_get(f, "offset");
			json_t *fs = json_object_get(f, "size");
			json_int_t off, fsz;

			if (!json_is_integer(o) || !json_is_integer(fs))
				return uvs_seterr(-EINVAL, "%s: %s.%s: no "
						  "offset or size", path, sn, fn);
			off = json_integer_value(o);
			fsz = json_integer_value(fs);
			if (off < 0 || fsz < 0 || off > sz || fsz > sz - off)
				return uvs_seterr(-EINVAL, "%s: %s.%s: offset "
						  "%lld size %lld outside the "
						  "struct's %lld bytes", path,
						  sn, fn, (long long)off,
						  (long long)fsz, (long long)sz);
		}
	}
	json_object_foreach(enums, en, e) {
		if (!json_is_object(e))
			return uvs_seterr(-EINVAL, "%s: enum %s: not an object",
					  path, en);
		json_object_foreach(e, vn, v)
			if (!json_is_integer(v))
				return uvs_seterr(-EINVAL, "%s: %s.%s: not an "
						  "integer", path, en, vn);
	}
	return 0;
}

/* Takes doc (a reference) into a new layout, or frees it. */
static int uvs__layout_new(const char *path, const char *version, json_t *doc,
			   const json_error_t *jerr, struct uvs_layout **out)
{
	struct uvs_layout *l;
	int err;

	*out = NULL;
	if (!doc)
		return uvs_seterr(-EINVAL, "%s: line %d: %s", path, jerr->line,
				  jerr->text);
	err = uvs__layout_check(path, doc);
	if (err) {
		json_decref(doc);
		return err;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		json_decref(doc);
		return uvs_seterr(-ENOMEM, "out of memory");
	}
	snprintf(l->version, sizeof(l->version), "%s", version);
	snprintf(l->path, sizeof(l->path), "%s", path);
	l->doc = doc;
	*out = l;
	return 0;
}

int uvs_layout__parse(const char *name, const char *buf, size_t len,
		      struct uvs_layout **out)
{
	json_error_t jerr;
	json_t *doc = json_loadb(buf, len, 0, &jerr);
	const char *v = json_string_value(json_object_get(doc, "libuv"));

	return uvs__layout_new(name, v ?: "", doc, &jerr, out);
}

int uvs_layout__load(const char *version, struct uvs_layout **out)
{
	json_error_t jerr;
	char dir[PATH_MAX], near[64], path[PATH_MAX];

	*out = NULL;
	if (!version || !version[0])
		return uvs_seterr(-ENOENT, "the target's libuv version is "
				  "unknown: no layout can be trusted to read "
				  "its memory");
	if (uvs__profiles_dir(dir, sizeof(dir)))
		return uvs_seterr(-ENOENT, "no profiles directory found (set "
				  "UVSCOPE_PROFILES, or make install)");
	snprintf(path, sizeof(path), "%s/libuv/%s.json", dir, version);
	if (access(path, R_OK)) {
		uvs__closest(dir, version, near, sizeof(near));
		return uvs_seterr(-ENOENT, "no struct layout for libuv %s "
				  "(closest profile: %s); refusing to read the "
				  "target's memory with a guessed layout", version,
				  near[0] ? near : "none");
	}
	return uvs__layout_new(path, version, json_load_file(path, 0, &jerr),
			       &jerr, out);
}

long uvs_layout__off(const struct uvs_layout *l, const char *type,
		     const char *field)
{
	json_t *f = json_object_get(json_object_get(json_object_get(
		json_object_get(l->doc, "structs"), type), "fields"), field);
	json_t *o = json_object_get(f, "offset");

	return json_is_integer(o) ? (long)json_integer_value(o) : -1;
}

long uvs_layout__size(const struct uvs_layout *l, const char *type)
{
	json_t *s = json_object_get(json_object_get(json_object_get(l->doc,
			"structs"), type), "size");

	return json_is_integer(s) ? (long)json_integer_value(s) : -1;
}

long uvs_layout__enum(const struct uvs_layout *l, const char *type,
		      const char *name)
{
	json_t *v = json_object_get(json_object_get(json_object_get(l->doc,
			"enums"), type), name);

	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

const char *uvs_layout__enum_name(const struct uvs_layout *l,
				  const char *type, long value)
{
	json_t *e = json_object_get(json_object_get(l->doc, "enums"), type), *v;
	const char *k;

	json_object_foreach(e, k, v)
		if (json_is_integer(v) && json_integer_value(v) == value)
			return k;
	return NULL;
}

const char *uvs_layout__path(const struct uvs_layout *l)
{
	return l->path;
}

void uvs_layout__close(struct uvs_layout *l)
{
	if (!l)
		return;
	json_decref(l->doc);
	free(l);
}
