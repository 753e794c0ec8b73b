#include "hgbridge/sha1.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace hgvfs::hg {
namespace {

const EVP_MD* sha1Algorithm() {
  // Fetched once: an implicit fetch on every digest costs more than the
  // digest of a small text.
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  return md;
}

struct ContextHolder {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~ContextHolder() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

Node sha1(std::initializer_list<ByteView> parts) {
  thread_local ContextHolder holder;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const EVP_MD* md = sha1Algorithm();
  if (!holder.ctx || !md || !EVP_DigestInit_ex(holder.ctx, md, nullptr)) std::abort();
  for (ByteView p : parts) EVP_DigestUpdate(holder.ctx, p.data(), p.size());
  EVP_DigestFinal_ex(holder.ctx, digest, &len);
  return Node::fromRaw(digest);
}

}  // namespace hgvfs::hg
