/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>

#include "fs.h"
#include "manifest.h"
#include "names.h"

#define MAGIC "ferry-manifest 1\n"

bool ferry_manifest_netns_ok(const char *v)
{
	return streq(v, "loopback") || streq(v, "own") || streq(v, "host");
}

bool ferry_manifest_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 255 || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

static bool value_ok(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

void ferry_manifest_add_file(struct ferry_manifest *m, const char *name, uint64_t size, const char *sha256)
{
	m->files = xrealloc(m->files, (m->n_files + 1) * sizeof(*m->files));
	struct ferry_manifest_file *f = &m->files[m->n_files++];
	f->name = xstrdup(name);
	f->size = size;
	snprintf(f->sha256, sizeof(f->sha256), "%s", sha256);
}

const struct ferry_manifest_file *ferry_manifest_find(const struct ferry_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_files; i++)
		if (streq(m->files[i].name, name))
			return &m->files[i];
	return NULL;
}

void ferry_manifest_free(struct ferry_manifest *m)
{
	if (!m)
		return;
	free(m->ferry_version);
	free(m->instance);
	free(m->image);
	free(m->image_fingerprint);
	free(m->node);
	free(m->netns);
	free(m->group);
	for (size_t i = 0; i < m->n_files; i++)
		free(m->files[i].name);
	free(m->files);
	free(m);
}

static void hex(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hmac_hex(const unsigned char *key, size_t keylen, const char *data, size_t len, char out[65],
		    struct ferry_error **err)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	if (keylen < FERRY_KEY_MIN || keylen > INT_MAX)
		return ferry_error_msg(err, EINVAL, "cluster key too short");
	if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, len, mac, &maclen) ||
	    maclen != 32)
		return ferry_error_msg(err, EIO, "HMAC-SHA256 failed");
	hex(mac, 32, out);
	return 0;
}

int ferry_manifest_sign(const struct ferry_manifest *m, const unsigned char *key, size_t keylen, char **ret,
			struct ferry_error **err)
{
	const char *strs[] = {m->ferry_version,	    m->instance, m->image,
			      m->image_fingerprint, m->node,	 m->netns};
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		if (strs[i] && !value_ok(strs[i]))
			return ferry_error_msg(err, EINVAL, "manifest value with a control character");
	if (m->netns && !ferry_manifest_netns_ok(m->netns))
		return ferry_error_msg(err, EINVAL, "bad manifest netns '%s'", m->netns);
	if (m->group && !ferry_group_ok(m->group))
		return ferry_error_msg(err, EINVAL, "bad manifest group '%s'", m->group);
	char *body = xasprintf(
	    MAGIC "ferry_version=%s\nuid=%u\ngid=%u\ninstance=%s\nimage=%s\nimage_fingerprint=%s\n"
		  "created=%lld\npid=%lld\nnode=%s\n",
	    m->ferry_version ? m->ferry_version : "", (unsigned)m->uid, (unsigned)m->gid,
	    m->instance ? m->instance : "", m->image ? m->image : "",
	    m->image_fingerprint ? m->image_fingerprint : "", m->created, m->pid, m->node ? m->node : "");
	if (m->netns) {
		char *n = xasprintf("%snetns=%s\n", body, m->netns);
		free(body);
		body = n;
	}
	if (m->lazy_pages) {
		char *n = xasprintf("%spages=lazy\n", body);
		free(body);
		body = n;
	}
	if (m->group) {
		char *n = xasprintf("%sgroup=%s\n", body, m->group);
		free(body);
		body = n;
	}
	for (size_t i = 0; i < m->n_files; i++) {
		const struct ferry_manifest_file *f = &m->files[i];
		if (!ferry_manifest_name_ok(f->name) || strlen(f->sha256) != 64) {
			free(body);
			return ferry_error_msg(err, EINVAL, "bad manifest file entry '%s'", f->name);
		}
		char *n =
		    xasprintf("%sfile=%s %llu %s\n", body, f->name, (unsigned long long)f->size, f->sha256);
		free(body);
		body = n;
	}
	char mac[65];
	int r = hmac_hex(key, keylen, body, strlen(body), mac, err);
	if (r < 0) {
		free(body);
		return r;
	}
	*ret = xasprintf("%shmac=%s\n", body, mac);
	free(body);
	return 0;
}

/* The index of a key that may appear once, or -1 ("file" repeats; anything else is unknown). */
static int scalar_key(const char *k)
{
	static const char *const keys[] = {
	    "ferry_version", "uid", "gid",  "instance", "image", "image_fingerprint",
	    "created",	     "pid", "node", "netns",	"pages", "group"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (streq(k, keys[i]))
			return (int)i;
	return -1;
}

/* "NAME SIZE SHA256" exactly as the signer writes it (one space, no sign, no leading zero). */
static bool file_line_canonical(const char *v, const char *name, unsigned long long size, const char *sha)
{
	char canon[256 + 1 + 20 + 1 + 64 + 1];
	snprintf(canon, sizeof(canon), "%s %llu %s", name, size, sha);
	return streq(canon, v);
}

static int bad(struct ferry_error **err, const char *what)
{
	return ferry_error_msg(err, EBADMSG, "malformed manifest: %s", what);
}

static int parse_num(const char *v, unsigned long long max, unsigned long long *ret, struct ferry_error **err)
{
	if (parse_uint64(v, max, ret) < 0)
		return bad(err, "bad number");
	return 0;
}

/* A "file=NAME SIZE SHA256" value added to @m: canonical, each name once, not too many. */
static int parse_file_line(struct ferry_manifest *m, const char *v, struct ferry_error **err)
{
	char name[256], sha[65];
	unsigned long long size = 0;
	int used = 0;
	if (sscanf(v, "%255s %llu %64s%n", name, &size, sha, &used) != 3 || v[used] != '\0' ||
	    !ferry_manifest_name_ok(name) || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64 ||
	    !file_line_canonical(v, name, size, sha))
		return bad(err, "bad file line");
	if (ferry_manifest_find(m, name))
		return bad(err, "file listed twice");
	if (m->n_files >= FERRY_MANIFEST_MAX_FILES)
		return bad(err, "too many files");
	ferry_manifest_add_file(m, name, size, sha);
	return 0;
}

/* The value @v of the scalar key @k set in @m (*@seen_uid once "uid" is). */
static int parse_scalar(struct ferry_manifest *m, const char *k, const char *v, bool *seen_uid,
			struct ferry_error **err)
{
	unsigned long long n = 0;
	int r = 0;
	if (streq(k, "ferry_version"))
		free(m->ferry_version), m->ferry_version = xstrdup(v);
	else if (streq(k, "instance"))
		free(m->instance), m->instance = xstrdup(v);
	else if (streq(k, "image"))
		free(m->image), m->image = xstrdup(v);
	else if (streq(k, "image_fingerprint"))
		free(m->image_fingerprint), m->image_fingerprint = xstrdup(v);
	else if (streq(k, "node"))
		free(m->node), m->node = xstrdup(v);
	else if (streq(k, "netns") && !ferry_manifest_netns_ok(v))
		return bad(err, "bad netns");
	else if (streq(k, "netns"))
		m->netns = xstrdup(v);
	else if (streq(k, "pages") && !streq(v, "lazy"))
		return bad(err, "bad pages");
	else if (streq(k, "pages"))
		m->lazy_pages = true;
	else if (streq(k, "group") && !ferry_group_ok(v))
		return bad(err, "bad group");
	else if (streq(k, "group"))
		m->group = xstrdup(v);
	else if (streq(k, "uid") && (r = parse_num(v, UINT32_MAX - 1, &n, err)) == 0)
		m->uid = (uid_t)n, *seen_uid = true;
	else if (streq(k, "gid") && (r = parse_num(v, UINT32_MAX - 1, &n, err)) == 0)
		m->gid = (gid_t)n;
	else if (streq(k, "created") && (r = parse_num(v, INT64_MAX, &n, err)) == 0)
		m->created = (long long)n;
	else if (streq(k, "pid") && (r = parse_num(v, INT32_MAX, &n, err)) == 0)
		m->pid = (long long)n;
	return r;
}

/* One "key=value" line of the body into @m; @seen: the scalar keys already set (each may be set once). */
static int parse_line(struct ferry_manifest *m, char *line, unsigned *seen, bool *seen_uid,
		      struct ferry_error **err)
{
	char *eq = strchr(line, '=');
	if (!eq)
		return bad(err, "line without '='");
	*eq = '\0';
	const char *k = line, *v = eq + 1;
	if (streq(k, "hmac"))
		return 0;
	if (!value_ok(v))
		return bad(err, "control character in a value");
	int key = scalar_key(k);
	if (key >= 0 && (*seen & (1u << key)))
		return bad(err, "a key set twice");
	if (key >= 0) {
		*seen |= 1u << key;
		return parse_scalar(m, k, v, seen_uid, err);
	}
	if (streq(k, "file"))
		return parse_file_line(m, v, err);
	return bad(err, "unknown key");
}

int ferry_manifest_parse_unverified(const char *text, size_t len, struct ferry_manifest **ret,
				    struct ferry_error **err)
{
	if (len > FERRY_MANIFEST_MAX)
		return bad(err, "too large");
	if (len < strlen(MAGIC) || memcmp(text, MAGIC, strlen(MAGIC)) != 0)
		return bad(err, "not a ferry manifest");
	if (memchr(text, '\0', len))
		return bad(err, "NUL byte");
	_cleanup_free_ char *copy = xstrndup(text + strlen(MAGIC), len - strlen(MAGIC));
	struct ferry_manifest *m = xzalloc(sizeof(*m));
	int r = 0;
	bool seen_uid = false;
	unsigned seen = 0;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save))
		r = parse_line(m, line, &seen, &seen_uid, err);
	if (r == 0 && !seen_uid)
		r = bad(err, "no uid");
	if (r < 0) {
		ferry_manifest_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

int ferry_manifest_verify(const char *text, size_t len, const unsigned char *key, size_t keylen,
			  struct ferry_manifest **ret, struct ferry_error **err)
{
	if (len > FERRY_MANIFEST_MAX)
		return bad(err, "too large");
	/* the hmac line must be the last line: find "\nhmac=" followed by 64 hex and "\n" at the end */
	static const char tag[] = "\nhmac=";
	if (len < strlen(tag) + 65 || text[len - 1] != '\n')
		return ferry_error_msg(err, EPERM, "checkpoint manifest is not signed");
	size_t at = len - 65 - strlen(tag);
	if (memcmp(text + at, tag, strlen(tag)) != 0)
		return ferry_error_msg(err, EPERM, "checkpoint manifest is not signed");
	size_t body_len = at + 1; /* includes the newline before "hmac=" */
	char want[65];
	int r = hmac_hex(key, keylen, text, body_len, want, err);
	if (r < 0)
		return r;
	if (CRYPTO_memcmp(want, text + at + strlen(tag), 64) != 0)
		return ferry_error_msg(
		    err, EPERM,
		    "checkpoint manifest signature does not match (altered, or made on another cluster)");
	return ferry_manifest_parse_unverified(text, body_len, ret, err);
}

int ferry_sha256_begin(struct ferry_sha256 *h, struct ferry_error **err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		h->ctx = NULL;
		return ferry_error_msg(err, EIO, "SHA-256 init failed");
	}
	h->ctx = ctx;
	h->size = 0;
	return 0;
}

int ferry_sha256_feed(struct ferry_sha256 *h, int fd, uint64_t end, struct ferry_error **err)
{
	const size_t bufsz = 1 << 20;
	_cleanup_free_ unsigned char *buf = xmalloc(bufsz);
	for (;;) {
		uint64_t left = end > h->size ? end - h->size : 0; /* 0: at or past @end */
		ssize_t n = pread(fd, buf, left < bufsz ? (size_t)left : bufsz, (off_t)h->size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ferry_error_set(err, errno, "read");
		if (n == 0)
			return 0;
		if (EVP_DigestUpdate(h->ctx, buf, (size_t)n) != 1)
			return ferry_error_msg(err, EIO, "SHA-256 failed");
		h->size += (uint64_t)n;
	}
}

int ferry_sha256_end(struct ferry_sha256 *h, char ret_hex[65], struct ferry_error **err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ok = EVP_DigestFinal_ex(h->ctx, md, &mdlen);
	ferry_sha256_abort(h);
	if (ok != 1 || mdlen != 32)
		return ferry_error_msg(err, EIO, "SHA-256 failed");
	hex(md, 32, ret_hex);
	return 0;
}

void ferry_sha256_abort(struct ferry_sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

int ferry_sha256_fd(int fd, uint64_t *ret_size, char ret_hex[65], struct ferry_error **err)
{
	struct ferry_sha256 h;
	int r = ferry_sha256_begin(&h, err);
	if (r < 0)
		return r;
	if ((r = ferry_sha256_feed(&h, fd, UINT64_MAX, err)) < 0) {
		ferry_sha256_abort(&h);
		return r;
	}
	uint64_t size = h.size;
	if ((r = ferry_sha256_end(&h, ret_hex, err)) < 0)
		return r;
	if (ret_size)
		*ret_size = size;
	return 0;
}

int ferry_sha256_buf(const void *buf, size_t len, char ret_hex[65], struct ferry_error **err)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return ferry_error_msg(err, EIO, "SHA-256 failed");
	hex(md, 32, ret_hex);
	return 0;
}

int ferry_image_fingerprint(int fd, char **ret, struct ferry_error **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ferry_error_set(err, errno, "stat image");
	if (S_ISDIR(st.st_mode)) {
		*ret = xstrdup("");
		return 0;
	}
	const size_t chunk = 1 << 20;
	_cleanup_free_ unsigned char *buf = xmalloc(2 * chunk);
	size_t have = 0;
	off_t offs[2] = {0, st.st_size > (off_t)chunk ? st.st_size - (off_t)chunk : 0};
	for (int i = 0; i < 2; i++) {
		ssize_t n = pread(fd, buf + have, chunk, offs[i]);
		if (n < 0)
			return ferry_error_set(err, errno, "read image");
		have += (size_t)n;
	}
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (EVP_Digest(buf, have, md, &mdlen, EVP_sha256(), NULL) != 1)
		return ferry_error_msg(err, EIO, "SHA-256 failed");
	char h[65];
	hex(md, 32, h);
	*ret = xasprintf("%lld:%s", (long long)st.st_size, h);
	return 0;
}

int ferry_key_load(const char *path, unsigned char *key, size_t *ret_len, struct ferry_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return ferry_error_set(err, errno, "open the cluster key '%s' (run 'make install')", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ferry_error_set(err, errno, "stat '%s'", path);
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077))
		return ferry_error_msg(err, EPERM,
				       "the cluster key '%s' must be a root-owned file with mode 0600", path);
	ssize_t n = read(fd, key, FERRY_KEY_MAX + 1);
	if (n < 0)
		return ferry_error_set(err, errno, "read '%s'", path);
	if (n < FERRY_KEY_MIN || n > FERRY_KEY_MAX)
		return ferry_error_msg(err, EINVAL, "the cluster key '%s' must hold %d to %d bytes", path,
				       FERRY_KEY_MIN, FERRY_KEY_MAX);
	*ret_len = (size_t)n;
	return 0;
}
