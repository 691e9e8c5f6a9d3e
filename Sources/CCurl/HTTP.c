// See include/CCurl.h. Types and constants come from curl's header; no symbol of libcurl is linked.
#include "CCurl.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
  CURLcode (*global_init)(long);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_perform)(CURL *);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  void (*easy_reset)(CURL *);
  const char *(*easy_strerror)(CURLcode);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
} curl;
static pthread_once_t loaded = PTHREAD_ONCE_INIT;
static char load_error[400];

// One handle, reused request after request: libcurl keeps its connections open in it, so a push of
// thousands of blobs does not connect thousands of times (URLSession pooled them too). Requests take
// turns on it; push and pull make them one at a time anyway.
static pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *shared_handle;

static void load(void) {
  // The soname of libcurl 7 and 8; the flavour (OpenSSL or GnuTLS) is whichever is installed.
  const char *names[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl-nss.so.4"};
  void *library = NULL;
  for (size_t i = 0; i < sizeof names / sizeof *names && !library; i++) library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    snprintf(load_error, sizeof load_error, "libcurl is not installed (%s); install libcurl4", dlerror());
    return;
  }
#define LOOK_UP(field, symbol)                                                                  \
  if (!(*(void **)&curl.field = dlsym(library, symbol))) {                                      \
    snprintf(load_error, sizeof load_error, "libcurl lacks %s; it is older than 7.17", symbol); \
    return;                                                                                     \
  }
  LOOK_UP(global_init, "curl_global_init")
  LOOK_UP(easy_init, "curl_easy_init")
  LOOK_UP(easy_setopt, "curl_easy_setopt")
  LOOK_UP(easy_perform, "curl_easy_perform")
  LOOK_UP(easy_getinfo, "curl_easy_getinfo")
  LOOK_UP(easy_reset, "curl_easy_reset")
  LOOK_UP(easy_strerror, "curl_easy_strerror")
  LOOK_UP(slist_append, "curl_slist_append")
  LOOK_UP(slist_free_all, "curl_slist_free_all")
#undef LOOK_UP
  // Once, before any thread makes a handle (curl_global_init is not thread-safe).
  CURLcode code = curl.global_init(CURL_GLOBAL_DEFAULT);
  if (code != CURLE_OK) snprintf(load_error, sizeof load_error, "libcurl did not start (code %d)", (int)code);
}

typedef struct {
  unsigned char *data;
  size_t length, capacity;
  int failed;
} buffer;

static size_t receive(char *chunk, size_t size, size_t count, void *context) {
  buffer *b = context;
  size_t n = size * count;
  if (b->length + n > b->capacity) {
    size_t capacity = b->capacity ? b->capacity : 16384;
    while (capacity < b->length + n) capacity *= 2;
    unsigned char *grown = realloc(b->data, capacity);
    if (!grown) {
      b->failed = 1;
      return 0;  // libcurl stops with CURLE_WRITE_ERROR
    }
    b->data = grown;
    b->capacity = capacity;
  }
  memcpy(b->data + b->length, chunk, n);
  b->length += n;
  return n;
}

typedef struct {
  const unsigned char *data;
  size_t length, offset;
} source;

static size_t send_body(char *chunk, size_t size, size_t count, void *context) {
  source *s = context;
  size_t n = size * count;
  if (n > s->length - s->offset) n = s->length - s->offset;
  memcpy(chunk, s->data + s->offset, n);
  s->offset += n;
  return n;
}

int lineage_http_perform(const char *method, const char *url, const unsigned char *body, size_t length,
                         lineage_http_response *out) {
  memset(out, 0, sizeof *out);
  pthread_once(&loaded, load);
  if (load_error[0]) {
    snprintf(out->error, sizeof out->error, "%s", load_error);
    return -1;
  }
  pthread_mutex_lock(&handle_lock);
  if (shared_handle) {
    curl.easy_reset(shared_handle);  // options back to their defaults; connections and caches kept
  } else if (!(shared_handle = curl.easy_init())) {
    pthread_mutex_unlock(&handle_lock);
    snprintf(out->error, sizeof out->error, "libcurl could not make a handle");
    return -1;
  }
  CURL *handle = shared_handle;
  buffer received = {0};
  source sent = {body, length, 0};
  char message[CURL_ERROR_SIZE] = "";
  struct curl_slist *headers = NULL;
  curl.easy_setopt(handle, CURLOPT_URL, url);
  curl.easy_setopt(handle, CURLOPT_ERRORBUFFER, message);
  curl.easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for timeouts: other threads run
  curl.easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
  curl.easy_setopt(handle, CURLOPT_CONNECTTIMEOUT, 30L);
  // A request that moves no byte for 60 s fails (URLSession's default idle timeout); a slow large
  // transfer that keeps moving does not.
  curl.easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl.easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, 60L);
  curl.easy_setopt(handle, CURLOPT_WRITEFUNCTION, receive);
  curl.easy_setopt(handle, CURLOPT_WRITEDATA, &received);
  if (strcmp(method, "HEAD") == 0) {
    curl.easy_setopt(handle, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "PUT") == 0) {
    curl.easy_setopt(handle, CURLOPT_UPLOAD, 1L);
    curl.easy_setopt(handle, CURLOPT_READFUNCTION, send_body);
    curl.easy_setopt(handle, CURLOPT_READDATA, &sent);
    curl.easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, (curl_off_t)length);
    // The body follows at once, without waiting for "100 Continue".
    headers = curl.slist_append(NULL, "Expect:");
    curl.easy_setopt(handle, CURLOPT_HTTPHEADER, headers);
  } else if (strcmp(method, "GET") != 0) {
    curl.easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method);
  }
  CURLcode code = curl.easy_perform(handle);
  int result = 0;
  if (code == CURLE_OK) {
    curl.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = received.data;
    out->length = received.length;
  } else {
    snprintf(out->error, sizeof out->error, "%s",
             received.failed ? "out of memory for the response" : (message[0] ? message : curl.easy_strerror(code)));
    free(received.data);
    result = -1;
  }
  // The options held pointers into this call's frame; none survives the reset of the next request.
  curl.easy_setopt(handle, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
  curl.easy_setopt(handle, CURLOPT_ERRORBUFFER, (char *)NULL);
  pthread_mutex_unlock(&handle_lock);
  if (headers) curl.slist_free_all(headers);
  return result;
}

void lineage_http_release(lineage_http_response *response) {
  free(response->body);
  response->body = NULL;
  response->length = 0;
}
