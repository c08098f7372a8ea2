#include "digest.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* SHA-256 is fetched once (OpenSSL 3 would fetch it on every init, which
 * also sets up error-queue state in each calling thread; EVP_sha256() in a
 * one-shot EVP_Digest is such an implicit fetch, about 6k instructions). */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void fetch_sha256(void) { sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

bool digest_sha256(const void *data, size_t len,
                   unsigned char out[DIGEST_SHA256_BYTES]) {
  unsigned int md_len = 0;
  pthread_once(&sha256_once, fetch_sha256);
  return sha256 && EVP_Digest(data, len, out, &md_len, sha256, NULL) &&
         md_len == DIGEST_SHA256_BYTES;
}

void digest_sha256_hex(const char *const parts[], size_t n,
                       char out[DIGEST_HEX_BYTES]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  pthread_once(&sha256_once, fetch_sha256);
  EVP_MD_CTX *ctx = sha256 ? EVP_MD_CTX_new() : NULL;
  int ok = ctx && EVP_DigestInit_ex2(ctx, sha256, NULL);
  for (size_t i = 0; ok && i < n; i++)
    ok = EVP_DigestUpdate(ctx, parts[i] ? parts[i] : "",
                          (parts[i] ? strlen(parts[i]) : 0) + 1);
  ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) && md_len == 32;
  out[0] = '\0';
  for (unsigned i = 0; ok && i < md_len; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
  EVP_MD_CTX_free(ctx);
}
