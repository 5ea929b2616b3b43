/*
 * dtx_curve.c — CURVE key files and CURVE sockets (see dtx_curve.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "dtx_curve.h"
#include "dtx_util.h"
#include "dtx_wire.h"

static int s_fail(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int s_fail(char *why, size_t why_len, const char *fmt, ...)
{
	if (why && why_len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return DTX_ECONFIG;
}

bool dtx_key_z85_valid(const char *z85)
{
	uint8_t raw[32];
	return z85 && strlen(z85) == DTX_Z85_KEY_LEN && zmq_z85_decode(raw, z85) != NULL;
}

/* Write text to path, created afresh with mode. */
static int s_write_new(const char *path, const char *text, mode_t mode, char *why, size_t why_len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return s_fail(why, why_len, "%s: %s", path, strerror(errno));
	size_t len = strlen(text);
	bool ok = fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	int err = errno;
	if (close(fd) != 0 && ok) {
		ok = false;
		err = errno;
	}
	if (!ok) {
		unlink(path);
		return s_fail(why, why_len, "%s: %s", path, strerror(err));
	}
	return 0;
}

int dtx_key_generate(const char *dir, const char *name, char *why, size_t why_len)
{
	char pub[DTX_Z85_KEY_LEN + 1], sec[DTX_Z85_KEY_LEN + 1];
	char ppath[1024], spath[1024], line[DTX_Z85_KEY_LEN + 2];
	if (!dtx_name_valid(name))
		return s_fail(why, why_len, "%s: names are 1-63 characters of A-Z a-z 0-9 _ -",
			      name);
	if (zmq_curve_keypair(pub, sec) != 0)
		return s_fail(why, why_len, "cannot make a key pair: %s", zmq_strerror(errno));
	snprintf(spath, sizeof(spath), "%s/%s.key", dir, name);
	snprintf(ppath, sizeof(ppath), "%s/%s.pub", dir, name);
	snprintf(line, sizeof(line), "%s\n", sec);
	int rc = s_write_new(spath, line, 0600, why, why_len);
	explicit_bzero(sec, sizeof(sec));
	explicit_bzero(line, sizeof(line));
	if (rc)
		return rc;
	snprintf(line, sizeof(line), "%s\n", pub);
	if ((rc = s_write_new(ppath, line, 0644, why, why_len)))
		unlink(spath);
	return rc;
}

/* Read the one line of a key file opened as fd into z85. */
static int s_read_key(int fd, const char *path, char z85[DTX_Z85_KEY_LEN + 1], char *why,
		      size_t why_len)
{
	char buf[DTX_Z85_KEY_LEN + 3];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return s_fail(why, why_len, "%s: %s", path, strerror(errno));
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	bool ok = dtx_key_z85_valid(buf);
	if (ok)
		memcpy(z85, buf, DTX_Z85_KEY_LEN + 1);
	explicit_bzero(buf, sizeof(buf));
	if (!ok)
		return s_fail(why, why_len,
			      "%s: not a key file (one line of 40 Z85 characters, as dtxctl "
			      "keygen writes)",
			      path);
	return 0;
}

int dtx_key_read_public(const char *path, char z85[DTX_Z85_KEY_LEN + 1], char *why, size_t why_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return s_fail(why, why_len, "%s: %s", path, strerror(errno));
	int rc = s_read_key(fd, path, z85, why, why_len);
	close(fd);
	return rc;
}

int dtx_key_read_secret(const char *path, char secret[DTX_Z85_KEY_LEN + 1],
			char public[DTX_Z85_KEY_LEN + 1], char *why, size_t why_len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return s_fail(why, why_len, "%s: %s", path,
			      errno == ELOOP ? "a symlink: a secret key must be a regular file"
					     : strerror(errno));
	int rc = 0;
	if (fstat(fd, &st) != 0)
		rc = s_fail(why, why_len, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = s_fail(why, why_len, "%s: not a regular file", path);
	else if (st.st_mode & 077)
		rc = s_fail(why, why_len,
			    "%s: mode %04o: a secret key must be readable by its owner only "
			    "(chmod 600)",
			    path, (unsigned)(st.st_mode & 07777));
	else if (st.st_uid != geteuid())
		rc = s_fail(why, why_len, "%s: owned by uid %u, not by this user (uid %u)", path,
			    (unsigned)st.st_uid, (unsigned)geteuid());
	else
		rc = s_read_key(fd, path, secret, why, why_len);
	close(fd);
	if (!rc && public && zmq_curve_public(public, secret) != 0)
		rc = s_fail(why, why_len, "%s: %s", path, zmq_strerror(errno));
	return rc;
}

int dtx_curve_client(void *sock, const char *server_pub, const char *secret, char *why,
		     size_t why_len)
{
	char spub[DTX_Z85_KEY_LEN + 1], pub[DTX_Z85_KEY_LEN + 1], sec[DTX_Z85_KEY_LEN + 1];
	int rc;
	if ((rc = dtx_key_read_public(server_pub, spub, why, why_len)) ||
	    (rc = dtx_key_read_secret(secret, sec, pub, why, why_len)))
		return rc;
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, spub, DTX_Z85_KEY_LEN) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, DTX_Z85_KEY_LEN) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, DTX_Z85_KEY_LEN) != 0)
		rc = s_fail(why, why_len, "CURVE: %s", zmq_strerror(errno));
	explicit_bzero(sec, sizeof(sec));
	return rc;
}

int dtx_curve_server(void *sock, const char *secret, char *why, size_t why_len)
{
	char sec[DTX_Z85_KEY_LEN + 1];
	int one = 1, rc;
	if ((rc = dtx_key_read_secret(secret, sec, NULL, why, why_len)))
		return rc;
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, DTX_Z85_KEY_LEN) != 0)
		rc = s_fail(why, why_len, "CURVE: %s", zmq_strerror(errno));
	explicit_bzero(sec, sizeof(sec));
	return rc;
}

bool dtx_endpoint_remote(const char *endpoint)
{
	return strncmp(endpoint, "ipc://", 6) != 0 && strncmp(endpoint, "inproc://", 9) != 0;
}
