#pragma once
// SHA-1 through OpenSSL's EVP interface, with one digest context per thread
// so hashing many small texts does not allocate. Any thread.

#include <initializer_list>

#include "base/bytes.h"
#include "hgbridge/node.h"

namespace hgvfs::hg {

// SHA-1 of the concatenation of `parts`.
Node sha1(std::initializer_list<ByteView> parts);
inline Node sha1Of(ByteView data) { return sha1({data}); }

}  // namespace hgvfs::hg
