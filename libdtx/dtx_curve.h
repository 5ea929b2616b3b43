/*
 * dtx_curve.h — CURVE keys and the sockets that use them. Internal: not
 * installed (libdtx.h has the client's part).
 *
 * A key pair is two files made by `dtxctl keygen NAME`: NAME.pub holds the
 * public key and NAME.key the secret key, each 40 characters of Z85 (the
 * encoding ZeroMQ prints keys in) and a newline. A secret key file must be
 * a regular file (not a symlink) readable by its owner only (mode 0600 or
 * 0400); its public key is computed from it, never read from elsewhere.
 *
 * Return values: 0, or DTX_ECONFIG with why holding "path: reason".
 */
#ifndef DTX_CURVE_H
#define DTX_CURVE_H

#include <stdbool.h>
#include <stddef.h>

#define DTX_Z85_KEY_LEN 40 /* a 32-byte key in Z85 */

/* Make a key pair: dir/name.key (0600) and dir/name.pub (0644), neither
 * existing before (refused if one does). name: dtx_name_valid(). */
int dtx_key_generate(const char *dir, const char *name, char *why, size_t why_len);

/* A Z85 key: 40 characters of ZeroMQ's Z85 alphabet. */
bool dtx_key_z85_valid(const char *z85);

/* Read a public key file into z85 (41 bytes). */
int dtx_key_read_public(const char *path, char z85[DTX_Z85_KEY_LEN + 1], char *why, size_t why_len);

/* Read a secret key file into secret (41 bytes), checking its mode and
 * that it is no symlink, and compute its public key into public (41 bytes;
 * NULL: not wanted). */
int dtx_key_read_secret(const char *path, char secret[DTX_Z85_KEY_LEN + 1],
			char public[DTX_Z85_KEY_LEN + 1], char *why, size_t why_len);

/*
 * Make sock a CURVE client of a server whose public key is in the file
 * server_pub, with the secret key in the file secret (its public key
 * computed from it). Before zmq_connect(). A server that does not hold
 * the matching secret key cannot complete the handshake: nothing is
 * exchanged with it.
 */
int dtx_curve_client(void *sock, const char *server_pub, const char *secret, char *why,
		     size_t why_len);

/* Make sock a CURVE server with the secret key in the file secret. Before
 * zmq_bind(); a ZAP handler decides which client keys may connect. */
int dtx_curve_server(void *sock, const char *secret, char *why, size_t why_len);

/* An endpoint that leaves the machine's file system: tcp://, and anything
 * but ipc:// and inproc://. */
bool dtx_endpoint_remote(const char *endpoint);

#endif
