// HTTP through libcurl, loaded on first use.
//
// Lineage talks HTTP only in `push` and `pull`. Linking libcurl (directly, or through Foundation's
// URLSession) maps it and about thirty libraries it needs (TLS, Kerberos, LDAP, SSH, IDN…) into
// every process at start-up, about 8 ms of each command. This shim dlopen()s libcurl the first time
// a request is made instead, and calls it through the pointers it looked up.
#ifndef LINEAGE_CCURL_H
#define LINEAGE_CCURL_H

#include <stddef.h>

/// What a request returned: the status (0 when no response came) and the body, or a message.
typedef struct {
  long status;
  unsigned char *body;  // malloc()ed; free with lineage_http_release
  size_t length;
  char error[512];      // empty on success
} lineage_http_response;

/// Performs one request. `method` is "GET", "HEAD" or "PUT" (with `body` of `length` bytes).
/// Returns 0 when a response arrived (whatever its status), else -1 with `out->error` set: libcurl
/// missing, a connection refused, a timeout. Thread-safe (requests take turns on one reused
/// connection-keeping handle); blocks until the request ends.
int lineage_http_perform(const char *method, const char *url, const unsigned char *body, size_t length,
                         lineage_http_response *out);

/// Frees a response's body.
void lineage_http_release(lineage_http_response *response);

#endif
