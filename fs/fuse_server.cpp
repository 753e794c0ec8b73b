#define FUSE_USE_VERSION 312
#include "fs/fuse_server.h"

#include <fuse3/fuse_lowlevel.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <vector>

#include "fs/log.h"

namespace hgvfs::fs {

struct FuseOps {
  static FuseServer& server(fuse_req_t req) {
    return *static_cast<FuseServer*>(fuse_req_userdata(req));
  }
  static FileSystem& fs(fuse_req_t req) { return server(req).fs_; }
  static const MountOptions& opts(fuse_req_t req) { return server(req).options_; }

  static int errnoFor(fuse_req_t req, const Error& e, const char* op) {
    switch (e.kind) {
      case ErrorKind::kNotFound:
        return ENOENT;
      case ErrorKind::kIo:
        if (server(req).firstReport(e.message())) log().warn("{}: {}", op, e.message());
        return e.err > 0 ? e.err : EIO;
      case ErrorKind::kInvalidArgument:
        return e.err > 0 ? e.err : EINVAL;  // e.g. ENOTDIR, EISDIR from FileSystem
      case ErrorKind::kCorrupt:
      case ErrorKind::kUnsupported:
      case ErrorKind::kCensored:
        break;
    }
    // One line per problem: the kernel retries reads and stats, and every
    // retry would otherwise log the same cause again.
    if (server(req).firstReport(e.message())) log().error("{}: EIO: {}", op, e.message());
    return EIO;
  }

  static void replyError(fuse_req_t req, const Error& e, const char* op) {
    fuse_reply_err(req, errnoFor(req, e, op));
  }

  // Runs a handler body; an escaping exception becomes EIO. `replied` tells
  // whether the body already replied, so the request is answered once.
  template <typename Body>
  static void guard(fuse_req_t req, const char* op, Body&& body) {
    bool replied = false;
    try {
      body(replied);
      return;
    } catch (const std::exception& e) {
      log().error("{}: EIO: unexpected exception: {}", op, e.what());
    } catch (...) {
      log().error("{}: EIO: unexpected exception", op);
    }
    if (!replied) fuse_reply_err(req, EIO);
  }

  static fuse_entry_param entryFor(fuse_req_t req, const struct stat& st) {
    fuse_entry_param e{};
    e.ino = st.st_ino;
    e.attr = st;
    e.attr_timeout = opts(req).attrTimeout;
    e.entry_timeout = opts(req).entryTimeout;
    return e;
  }

  static void init(void* userdata, fuse_conn_info* conn) {
    auto* self = static_cast<FuseServer*>(userdata);
    auto want = [&](unsigned cap) {
      if (conn->capable & cap) conn->want |= cap;
    };
    want(FUSE_CAP_ASYNC_READ);
    if (self->options_.readdirplus) {
      want(FUSE_CAP_READDIRPLUS);
    } else {
      conn->want &= ~FUSE_CAP_READDIRPLUS;
    }
    want(FUSE_CAP_CACHE_SYMLINKS);
    want(FUSE_CAP_PARALLEL_DIROPS);
    // Writes are gathered in the kernel's page cache (see MountOptions).
    if (self->options_.writebackCache && !self->options_.readOnly) {
      want(FUSE_CAP_WRITEBACK_CACHE);
    } else {
      conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    }
    // Write requests arrive in a pipe and are spliced into overlay files.
    want(FUSE_CAP_SPLICE_READ);
    want(FUSE_CAP_SPLICE_MOVE);
    // Always readdirplus: one request per directory block returns names
    // and attributes, saving a lookup per entry.
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    // O_TRUNC must reach the daemon as a SETATTR: with atomic O_TRUNC it
    // would ride on the OPEN request, which zero-message opens never send.
    conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
    // Contents never change behind the kernel's back: no need to drop the
    // page cache when an attribute is refreshed.
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    // Answering the first open with ENOSYS makes the kernel open files (and
    // directories) without asking again, keeping the page cache as with
    // keep_cache: a warm `cat` then costs no request at all.
    self->fs_.kernelMtime().setKernelOwns((conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0);
    self->noOpen_ = self->options_.zeroMessageOpen && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
    self->noOpendir_ =
        self->options_.zeroMessageOpendir && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
    conn->max_readahead = conn->capable ? UINT32_MAX : conn->max_readahead;
    log().info("FUSE session started (protocol {}.{}, writeback cache {})", conn->proto_major,
               conn->proto_minor, (conn->want & FUSE_CAP_WRITEBACK_CACHE) ? "on" : "off");
  }

  static void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guard(req, "lookup", [&](bool& replied) {
      auto st = fs(req).lookup(InodeNumber(parent), name);
      replied = true;
      if (st.ok()) {
        fuse_entry_param e = entryFor(req, *st);
        fuse_reply_entry(req, &e);
      } else if (st.error().kind == ErrorKind::kNotFound) {
        fuse_entry_param e{};  // ino 0: a negative entry the kernel may cache
        e.entry_timeout = opts(req).negativeTimeout;
        fuse_reply_entry(req, &e);
      } else {
        replyError(req, st.error(), "lookup");
      }
    });
  }

  static void forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
    try {
      fs(req).forget(InodeNumber(ino), n);
    } catch (...) {
    }
    fuse_reply_none(req);
  }

  static void forgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    try {
      for (size_t i = 0; i < count; ++i) {
        fs(req).forget(InodeNumber(forgets[i].ino), forgets[i].nlookup);
      }
    } catch (...) {
    }
    fuse_reply_none(req);
  }

  static void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    guard(req, "getattr", [&](bool& replied) {
      auto st = fs(req).getattr(InodeNumber(ino));
      replied = true;
      if (!st.ok()) return replyError(req, st.error(), "getattr");
      fuse_reply_attr(req, &*st, opts(req).attrTimeout);
    });
  }

  static void readlink(fuse_req_t req, fuse_ino_t ino) {
    guard(req, "readlink", [&](bool& replied) {
      auto target = fs(req).readlink(InodeNumber(ino));
      replied = true;
      if (!target.ok()) return replyError(req, target.error(), "readlink");
      if (target->find('\0') != Bytes::npos || target->empty()) {
        log().error("readlink: EIO: inode {} has a symlink target that is empty or holds NUL", ino);
        return (void)fuse_reply_err(req, EIO);
      }
      fuse_reply_readlink(req, target->c_str());
    });
  }

  static Caller caller(fuse_req_t req) {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    return Caller{ctx->uid, ctx->gid};
  }

  static void replyEntry(fuse_req_t req, const Result<struct stat>& st, const char* op) {
    if (!st.ok()) return replyError(req, st.error(), op);
    fuse_entry_param e = entryFor(req, *st);
    fuse_reply_entry(req, &e);
  }

  static void replyStatus(fuse_req_t req, const Status& status, const char* op) {
    if (!status.ok()) return replyError(req, status.error(), op);
    fuse_reply_err(req, 0);
  }

  // Directories are listed by inode (no handle needed): with zero-message
  // opendir there is none.
  static void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (server(req).noOpendir_) return (void)fuse_reply_err(req, ENOSYS);
    guard(req, "opendir", [&](bool& replied) {
      auto listing = fs(req).list(InodeNumber(ino), 0, 0);
      replied = true;
      if (!listing.ok()) return replyError(req, listing.error(), "opendir");
      fi->cache_readdir = opts(req).cacheReaddir;
      fi->keep_cache = opts(req).cacheReaddir;
      fi->fh = 0;
      fuse_reply_open(req, fi);
    });
  }

  static void releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

  static void readdirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
    guard(req, plus ? "readdirplus" : "readdir", [&](bool& replied) {
      FileSystem& filesystem = fs(req);
      std::vector<char> buf(size);
      size_t used = 0;
      // Files whose size is not known yet are listed without attributes.
      std::vector<Bytes> unsized;
      if (plus && off == 0) unsized = filesystem.warmSizes(InodeNumber(ino));
      // "." and ".." take offsets 0 and 1; entries carry cookies from 3.
      for (off_t i = off; i < 2; ++i) {
        const char* name = i == 0 ? "." : "..";
        struct stat st {};
        st.st_ino = i == 0 ? ino : filesystem.parentOf(InodeNumber(ino)).value();
        st.st_mode = S_IFDIR;
        size_t need;
        if (plus) {
          fuse_entry_param e{};
          e.attr = st;
          need = fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, i + 1);
        } else {
          need = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, i + 1);
        }
        if (need > size - used) break;
        used += need;
      }
      uint64_t after = static_cast<uint64_t>(std::max<off_t>(off, 2));
      // A directory entry takes at least 24 bytes (32 with attributes).
      size_t max = size / (plus ? 136 : 32) + 1;
      while (used < size) {
        auto listing = filesystem.list(InodeNumber(ino), after, max);
        if (!listing.ok()) {
          if (used > 0) break;  // what fits is returned; the error comes next call
          replied = true;
          return replyError(req, listing.error(), "readdir");
        }
        if (listing->empty()) break;
        bool full = false;
        for (const ListedEntry& entry : *listing) {
          char* dst = buf.data() + used;
          size_t room = size - used;
          off_t next = static_cast<off_t>(entry.cookie);
          size_t need;
          if (plus) {
            need = fuse_add_direntry_plus(req, nullptr, 0, entry.name.c_str(), nullptr, 0);
            if (need > room) {
              full = true;
              break;
            }
            fuse_entry_param e{};
            if (std::binary_search(unsized.begin(), unsized.end(), entry.name)) {
              e.attr.st_ino = entry.ino;
              e.attr.st_mode = entry.type;
              fuse_add_direntry_plus(req, dst, room, entry.name.c_str(), &e, next);
              used += need;
              after = entry.cookie;
              continue;
            }
            auto st = filesystem.lookup(InodeNumber(ino), entry.name);
            if (st.ok()) {
              e = entryFor(req, *st);
            } else if (st.error().kind == ErrorKind::kNotFound) {
              after = entry.cookie;  // removed meanwhile
              continue;
            } else {
              // The name is still listed, without attributes (node id 0:
              // no lookup counted); stat or open of it reports the error.
              errnoFor(req, st.error(), "readdirplus");
              e.attr.st_ino = entry.ino;
              e.attr.st_mode = entry.type;
            }
            fuse_add_direntry_plus(req, dst, room, entry.name.c_str(), &e, next);
          } else {
            struct stat st {};
            st.st_ino = entry.ino;
            st.st_mode = entry.type;
            need = fuse_add_direntry(req, dst, room, entry.name.c_str(), &st, next);
            if (need > room) {
              full = true;
              break;
            }
          }
          used += need;
          after = entry.cookie;
        }
        if (full) break;
      }
      replied = true;
      fuse_reply_buf(req, buf.data(), used);
    });
  }

  static void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    readdirCommon(req, ino, size, off, false);
  }
  static void readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    readdirCommon(req, ino, size, off, true);
  }

  // Files are read and written by inode: no handle. The first open answers
  // ENOSYS where the kernel supports it, so later opens cost no request.
  static void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (server(req).noOpen_) return (void)fuse_reply_err(req, ENOSYS);
    guard(req, "open", [&](bool& replied) {
      auto st = fs(req).getattr(InodeNumber(ino));
      replied = true;
      if (!st.ok()) return replyError(req, st.error(), "open");
      if (S_ISDIR(st->st_mode)) return (void)fuse_reply_err(req, EISDIR);
      if (!fs(req).writable() && ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))) {
        return (void)fuse_reply_err(req, EROFS);
      }
      // The kernel's page cache stays valid: every change goes through it.
      fi->keep_cache = opts(req).keepCache;
      fi->noflush = 1;
      fi->fh = 0;
      fuse_reply_open(req, fi);
    });
  }

  static void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    guard(req, "read", [&](bool& replied) {
      std::vector<char> buf(size);
      auto n = fs(req).read(InodeNumber(ino), buf.data(), size, static_cast<uint64_t>(off));
      replied = true;
      if (!n.ok()) return replyError(req, n.error(), "read");
      fuse_reply_buf(req, buf.data(), *n);
    });
  }

  static void write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off,
                    fuse_file_info*) {
    guard(req, "write", [&](bool& replied) {
      auto n = fs(req).write(InodeNumber(ino), data, size, static_cast<uint64_t>(off));
      replied = true;
      if (!n.ok()) return replyError(req, n.error(), "write");
      fuse_reply_write(req, *n);
    });
  }

  // Writes move from the request into the overlay file without a copy
  // through a buffer of ours (splice, when the kernel hands the request
  // over in a pipe).
  static void writeBuf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in, off_t off,
                       fuse_file_info*) {
    guard(req, "write", [&](bool& replied) {
      auto file = fs(req).writableFile(InodeNumber(ino));
      if (!file.ok()) {
        replied = true;
        return replyError(req, file.error(), "write");
      }
      fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
      out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
      out.buf[0].fd = FileSystem::fdOf(**file);
      out.buf[0].pos = off;
      ssize_t n;
      {
        KernelMtime::Keep keep(fs(req).kernelMtime(), InodeNumber(ino), out.buf[0].fd);
        n = fuse_buf_copy(&out, in, static_cast<fuse_buf_copy_flags>(0));
      }
      fs(req).noteChange();  // also after a short or failed copy
      replied = true;
      if (n < 0) {
        Error e = ioError(static_cast<int>(-n), std::string("cannot write overlay file: ") +
                                                    strerror(static_cast<int>(-n)));
        return replyError(req, e, "write");
      }
      fuse_reply_write(req, static_cast<size_t>(n));
    });
  }

  // Every write request was copied into the overlay file before it was
  // answered, and on close the kernel sends the file's dirty pages (and, with
  // the writeback cache, its mtime) and waits for the answers before it
  // would send FLUSH: there is nothing left to do here. ENOSYS tells the
  // kernel so once (it stops sending FLUSH, and still writes dirty pages
  // back on close), which saves a round trip on every close.
  static void flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, ENOSYS); }
  static void release(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

  static void fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
    guard(req, "fsync", [&](bool& replied) {
      auto status = fs(req).fsync(InodeNumber(ino), datasync != 0);
      replied = true;
      replyStatus(req, status, "fsync");
    });
  }

  static void fsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
    guard(req, "fsyncdir", [&](bool& replied) {
      auto status = fs(req).syncMetadata();
      replied = true;
      replyStatus(req, status, "fsyncdir");
    });
  }

  static void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int toSet,
                      fuse_file_info*) {
    guard(req, "setattr", [&](bool& replied) {
      AttrChange change;
      if (toSet & FUSE_SET_ATTR_MODE) change.mode = attr->st_mode;
      if (toSet & FUSE_SET_ATTR_UID) change.uid = attr->st_uid;
      if (toSet & FUSE_SET_ATTR_GID) change.gid = attr->st_gid;
      if (toSet & FUSE_SET_ATTR_SIZE) change.size = static_cast<uint64_t>(attr->st_size);
      if (toSet & FUSE_SET_ATTR_ATIME_NOW) {
        change.atime = timespec{0, UTIME_NOW};
      } else if (toSet & FUSE_SET_ATTR_ATIME) {
        change.atime = attr->st_atim;
      }
      if (toSet & FUSE_SET_ATTR_MTIME_NOW) {
        change.mtime = timespec{0, UTIME_NOW};
      } else if (toSet & FUSE_SET_ATTR_MTIME) {
        change.mtime = attr->st_mtim;
      }
      Result<struct stat> st = Result<struct stat>(invalidArgument("unset"));
      if (!change.mode && !change.uid && !change.gid && !change.size && !change.atime &&
          !change.mtime) {
        st = fs(req).getattr(InodeNumber(ino));  // e.g. only ctime: nothing to keep
      } else {
        st = fs(req).setattr(InodeNumber(ino), change);
      }
      replied = true;
      if (!st.ok()) return replyError(req, st.error(), "setattr");
      fuse_reply_attr(req, &*st, opts(req).attrTimeout);
    });
  }

  static void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                     fuse_file_info* fi) {
    guard(req, "create", [&](bool& replied) {
      auto st = fs(req).create(InodeNumber(parent), name, mode, caller(req));
      replied = true;
      if (!st.ok()) return replyError(req, st.error(), "create");
      fuse_entry_param e = entryFor(req, *st);
      fi->keep_cache = opts(req).keepCache;
      fi->noflush = 1;  // writes reach the overlay at once: nothing to flush
      fi->fh = 0;
      if (fuse_reply_create(req, &e, fi) != 0) fs(req).forget(InodeNumber(e.ino), 1);
    });
  }

  static void mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
    guard(req, "mknod", [&](bool& replied) {
      auto st = fs(req).mknod(InodeNumber(parent), name, mode, caller(req), rdev);
      replied = true;
      replyEntry(req, st, "mknod");
    });
  }

  static void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    guard(req, "mkdir", [&](bool& replied) {
      auto st = fs(req).mkdir(InodeNumber(parent), name, mode, caller(req));
      replied = true;
      replyEntry(req, st, "mkdir");
    });
  }

  static void symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
    guard(req, "symlink", [&](bool& replied) {
      auto st = fs(req).symlink(InodeNumber(parent), name, target, caller(req));
      replied = true;
      replyEntry(req, st, "symlink");
    });
  }

  static void unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guard(req, "unlink", [&](bool& replied) {
      auto status = fs(req).unlink(InodeNumber(parent), name);
      replied = true;
      replyStatus(req, status, "unlink");
    });
  }

  static void rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guard(req, "rmdir", [&](bool& replied) {
      auto status = fs(req).rmdir(InodeNumber(parent), name);
      replied = true;
      replyStatus(req, status, "rmdir");
    });
  }

  static void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newParent,
                     const char* newName, unsigned int flags) {
    guard(req, "rename", [&](bool& replied) {
      auto status =
          fs(req).rename(InodeNumber(parent), name, InodeNumber(newParent), newName, flags);
      replied = true;
      replyStatus(req, status, "rename");
    });
  }

  // A hard link (FileSystem::link; docs/ARCHITECTURE.md).
  static void link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
    guard(req, "link", [&](bool& replied) {
      auto st = fs(req).link(InodeNumber(ino), InodeNumber(newparent), newname);
      replied = true;
      replyEntry(req, st, "link");
    });
  }

  static void fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                        fuse_file_info*) {
    guard(req, "fallocate", [&](bool& replied) {
      auto status = fs(req).fallocate(InodeNumber(ino), mode, static_cast<uint64_t>(off),
                                      static_cast<uint64_t>(len));
      replied = true;
      replyStatus(req, status, "fallocate");
    });
  }

  static void statfs(fuse_req_t req, fuse_ino_t) {
    struct statvfs st {};
    const Overlay* overlay = server(req).fs_.overlay();
    std::string where = overlay ? overlay->directory() : server(req).fs_.objects().cacheDirectory();
    if (::statvfs(where.c_str(), &st) != 0) {
      st = {};
      st.f_bsize = st.f_frsize = 4096;
    }
    st.f_namemax = NAME_MAX;
    fuse_reply_statfs(req, &st);
  }

  static void access(fuse_req_t req, fuse_ino_t, int mask) {
    fuse_reply_err(req, (mask & W_OK) && !fs(req).writable() ? EROFS : 0);
  }

  // Extended attributes (FileSystem::getxattr and the rest). With them
  // off (MountOptions::xattrs), ENOSYS: the kernel stops asking, and every
  // later xattr call answers EOPNOTSUPP without a round trip.
  static void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    if (!opts(req).xattrs) return (void)fuse_reply_err(req, ENOSYS);
    guard(req, "getxattr", [&](bool& replied) {
      auto value = fs(req).getxattr(InodeNumber(ino), name, caller(req));
      replied = true;
      replyXattr(req, value, size, "getxattr");
    });
  }
  static void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    if (!opts(req).xattrs) return (void)fuse_reply_err(req, ENOSYS);
    guard(req, "listxattr", [&](bool& replied) {
      auto names = fs(req).listxattr(InodeNumber(ino), caller(req));
      replied = true;
      replyXattr(req, names, size, "listxattr");
    });
  }
  // Size 0 asks for the size; a buffer too small is ERANGE.
  static void replyXattr(fuse_req_t req, const Result<Bytes>& value, size_t size, const char* op) {
    if (!value.ok()) return replyError(req, value.error(), op);
    if (size == 0) return (void)fuse_reply_xattr(req, value->size());
    if (value->size() > size) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, value->data(), value->size());
  }
  static void setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                       size_t size, int flags) {
    if (!opts(req).xattrs) return (void)fuse_reply_err(req, ENOSYS);
    guard(req, "setxattr", [&](bool& replied) {
      auto status =
          fs(req).setxattr(InodeNumber(ino), name, ByteView(value, size), flags, caller(req));
      replied = true;
      replyStatus(req, status, "setxattr");
    });
  }
  static void removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    if (!opts(req).xattrs) return (void)fuse_reply_err(req, ENOSYS);
    guard(req, "removexattr", [&](bool& replied) {
      auto status = fs(req).removexattr(InodeNumber(ino), name, caller(req));
      replied = true;
      replyStatus(req, status, "removexattr");
    });
  }

  // Every request passes here (the table below): its handler's time goes
  // to the FileSystem's FuseStats. The stats are found before the handler
  // runs, since the request is gone once replied to.
  template <FuseOp Op, auto Handler>
  struct Timed;
  template <FuseOp Op, typename... Args, void (*Handler)(fuse_req_t, Args...)>
  struct Timed<Op, Handler> {
    static void call(fuse_req_t req, Args... args) {
      FuseStats& stats = fs(req).fuseStats();
      auto start = std::chrono::steady_clock::now();
      Handler(req, args...);
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count();
      stats.record(Op, static_cast<uint64_t>(ns));
    }
  };

  static fuse_lowlevel_ops table() {
    fuse_lowlevel_ops ops{};
    ops.init = init;
    ops.lookup = Timed<FuseOp::kLookup, lookup>::call;
    ops.forget = Timed<FuseOp::kForget, forget>::call;
    ops.forget_multi = Timed<FuseOp::kForgetMulti, forgetMulti>::call;
    ops.getattr = Timed<FuseOp::kGetattr, getattr>::call;
    ops.readlink = Timed<FuseOp::kReadlink, readlink>::call;
    ops.opendir = Timed<FuseOp::kOpendir, opendir>::call;
    ops.readdir = Timed<FuseOp::kReaddir, readdir>::call;
    ops.readdirplus = Timed<FuseOp::kReaddirplus, readdirplus>::call;
    ops.releasedir = Timed<FuseOp::kReleasedir, releasedir>::call;
    ops.open = Timed<FuseOp::kOpen, open>::call;
    ops.read = Timed<FuseOp::kRead, read>::call;
    ops.release = Timed<FuseOp::kRelease, release>::call;
    ops.flush = Timed<FuseOp::kFlush, flush>::call;
    ops.fsync = Timed<FuseOp::kFsync, fsync>::call;
    ops.fsyncdir = Timed<FuseOp::kFsyncdir, fsyncdir>::call;
    ops.statfs = Timed<FuseOp::kStatfs, statfs>::call;
    ops.access = Timed<FuseOp::kAccess, access>::call;
    ops.getxattr = Timed<FuseOp::kGetxattr, getxattr>::call;
    ops.listxattr = Timed<FuseOp::kListxattr, listxattr>::call;
    ops.setattr = Timed<FuseOp::kSetattr, setattr>::call;
    ops.mknod = Timed<FuseOp::kMknod, mknod>::call;
    ops.mkdir = Timed<FuseOp::kMkdir, mkdir>::call;
    ops.unlink = Timed<FuseOp::kUnlink, unlink>::call;
    ops.rmdir = Timed<FuseOp::kRmdir, rmdir>::call;
    ops.symlink = Timed<FuseOp::kSymlink, symlink>::call;
    ops.rename = Timed<FuseOp::kRename, rename>::call;
    ops.link = Timed<FuseOp::kLink, link>::call;
    ops.write = Timed<FuseOp::kWrite, write>::call;
    ops.write_buf = Timed<FuseOp::kWriteBuf, writeBuf>::call;
    ops.create = Timed<FuseOp::kCreate, create>::call;
    ops.setxattr = Timed<FuseOp::kSetxattr, setxattr>::call;
    ops.removexattr = Timed<FuseOp::kRemovexattr, removexattr>::call;
    ops.fallocate = Timed<FuseOp::kFallocate, fallocate>::call;
    return ops;
  }
};

Result<std::unique_ptr<FuseServer>> FuseServer::mount(FileSystem& fs, const MountOptions& options) {
  std::unique_ptr<FuseServer> server(new FuseServer(fs, options));
  std::vector<std::string> argv = {"hgvfs"};
  if (options.debugFuse) argv.push_back("-d");
  std::string mountOpts = "fsname=" + options.fsName + ",subtype=hgvfs,default_permissions";
  if (options.readOnly) mountOpts += ",ro";
  if (options.allowOther) mountOpts += ",allow_other";
  argv.push_back("-o");
  argv.push_back(mountOpts);
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());
  static const fuse_lowlevel_ops ops = FuseOps::table();
  server->session_ = fuse_session_new(&args, &ops, sizeof ops, server.get());
  if (!server->session_) return ioError(EINVAL, "cannot create the FUSE session");
  if (fuse_session_mount(server->session_, options.mountPoint.c_str()) != 0) {
    fuse_session_destroy(server->session_);
    server->session_ = nullptr;
    return ioError(EIO, "cannot mount (is /dev/fuse available and fusermount3 installed?)",
                   options.mountPoint);
  }
  server->mounted_ = true;
  fs.setKernelCache(server.get());
  return server;
}

int FuseServer::run() {
  if (fuse_set_signal_handlers(session_) != 0) return -1;
  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(config, 0);
  fuse_loop_cfg_set_idle_threads(config, options_.maxIdleThreads);
  fuse_loop_cfg_set_max_threads(config, options_.maxThreads);
  int rc = fuse_session_loop_mt(session_, config);
  fuse_loop_cfg_destroy(config);
  fuse_remove_signal_handlers(session_);
  return rc;
}

bool FuseServer::firstReport(const std::string& message) {
  MutexLock lock(reportedMutex_);
  if (reported_.size() >= 4096) reported_.clear();  // bounded; old causes may log again
  return reported_.insert(message).second;
}

void FuseServer::requestExit() {
  if (session_) fuse_session_exit(session_);
}

void FuseServer::invalidateEntry(InodeNumber parent, ByteView name) {
  if (!session_) return;
  (void)fuse_lowlevel_notify_inval_entry(session_, parent.value(), name.data(), name.size());
}

void FuseServer::invalidateInode(InodeNumber ino) {
  if (!session_) return;
  (void)fuse_lowlevel_notify_inval_inode(session_, ino.value(), 0, 0);
}

FuseServer::~FuseServer() {
  fs_.setKernelCache(nullptr);
  if (session_) {
    if (mounted_) fuse_session_unmount(session_);
    fuse_session_destroy(session_);
  }
}

}  // namespace hgvfs::fs
