#define FUSE_USE_VERSION 312
#include "fs/fuse_server.h"

#include <fuse3/fuse_lowlevel.h>
#include <sys/statvfs.h>

#include <cerrno>
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

  static int errnoFor(fuse_req_t req, const hg::Error& e, const char* op) {
    switch (e.kind) {
      case hg::ErrorKind::kNotFound:
        return ENOENT;
      case hg::ErrorKind::kIo:
        if (server(req).firstReport(e.message())) log().warn("{}: {}", op, e.message());
        return e.err > 0 ? e.err : EIO;
      case hg::ErrorKind::kInvalidArgument:
        return e.err > 0 ? e.err : EINVAL;  // e.g. ENOTDIR, EISDIR from FileSystem
      case hg::ErrorKind::kCorrupt:
      case hg::ErrorKind::kUnsupported:
      case hg::ErrorKind::kCensored:
        break;
    }
    // One line per problem: the kernel retries reads and stats, and every
    // retry would otherwise log the same cause again.
    if (server(req).firstReport(e.message())) log().error("{}: EIO: {}", op, e.message());
    return EIO;
  }

  static void replyError(fuse_req_t req, const hg::Error& e, const char* op) {
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

  // The file type bits of a directory entry (readdir's d_type).
  static mode_t typeBits(const store::TreeEntry& entry) {
    if (entry.isDirectory()) return S_IFDIR;
    return entry.kind == store::EntryKind::kSymlink ? S_IFLNK : S_IFREG;
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
    // Always readdirplus: one request per directory block returns names
    // and attributes, saving a lookup per entry.
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    // Contents never change behind the kernel's back: no need to drop the
    // page cache when an attribute is refreshed.
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    // Answering the first open with ENOSYS makes the kernel open files (and
    // directories) without asking again, keeping the page cache as with
    // keep_cache: a warm `cat` then costs no request at all.
    self->noOpen_ = self->options_.zeroMessageOpen && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
    self->noOpendir_ =
        self->options_.zeroMessageOpendir && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
    conn->max_readahead = conn->capable ? UINT32_MAX : conn->max_readahead;
    log().info("FUSE session started (protocol {}.{})", conn->proto_major, conn->proto_minor);
  }

  static void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guard(req, "lookup", [&](bool& replied) {
      auto st = fs(req).lookup(InodeNumber(parent), name);
      replied = true;
      if (st.ok()) {
        fuse_entry_param e = entryFor(req, *st);
        fuse_reply_entry(req, &e);
      } else if (st.error().kind == hg::ErrorKind::kNotFound) {
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

  using TreeHandle = std::shared_ptr<const store::Tree>;

  static void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (server(req).noOpendir_) return (void)fuse_reply_err(req, ENOSYS);
    guard(req, "opendir", [&](bool& replied) {
      auto tree = fs(req).listing(InodeNumber(ino));
      replied = true;
      if (!tree.ok()) return replyError(req, tree.error(), "opendir");
      // The listing of a revision never changes: let the kernel cache it.
      fi->cache_readdir = opts(req).cacheReaddir;
      fi->keep_cache = opts(req).cacheReaddir;
      fi->fh = reinterpret_cast<uint64_t>(new TreeHandle(std::move(tree).value()));
      if (fuse_reply_open(req, fi) != 0) delete reinterpret_cast<TreeHandle*>(fi->fh);
    });
  }

  static void releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    delete reinterpret_cast<TreeHandle*>(fi->fh);  // null after a zero-message opendir
    fuse_reply_err(req, 0);
  }

  static void readdirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                            fuse_file_info* fi, bool plus) {
    guard(req, plus ? "readdirplus" : "readdir", [&](bool& replied) {
      // With zero-message opendir there is no handle: the listing comes from
      // the store's tree cache on each call (it cannot change).
      TreeHandle listing;
      if (fi->fh) {
        listing = *reinterpret_cast<TreeHandle*>(fi->fh);
      } else {
        auto tree = fs(req).listing(InodeNumber(ino));
        if (!tree.ok()) {
          replied = true;
          return replyError(req, tree.error(), "readdir");
        }
        listing = std::move(tree).value();
      }
      const store::Tree& tree = *listing;
      const auto& entries = tree.entries();
      std::vector<char> buf(size);
      size_t used = 0;
      const size_t total = entries.size() + 2;
      FileSystem& filesystem = fs(req);
      for (size_t i = static_cast<size_t>(off); i < total; ++i) {
        const char* name = i == 0 ? "." : i == 1 ? ".." : entries[i - 2].name.c_str();
        char* dst = buf.data() + used;
        size_t room = size - used;
        off_t next = static_cast<off_t>(i + 1);
        if (plus) {
          size_t need = fuse_add_direntry_plus(req, nullptr, 0, name, nullptr, 0);
          if (need > room) break;
          fuse_entry_param e{};
          if (i < 2) {
            e.attr.st_ino = i == 0 ? ino : filesystem.parentAttributes(InodeNumber(ino)).st_ino;
            e.attr.st_mode = S_IFDIR;
          } else {
            const auto& entry = entries[i - 2];
            auto st = filesystem.lookupEntry(InodeNumber(ino), entry);
            if (st.ok()) {
              e = entryFor(req, *st);
            } else {
              // The name is still listed, without attributes (node id 0:
              // no lookup counted); stat or open of it reports the error.
              errnoFor(req, st.error(), "readdirplus");
              e.attr.st_ino = filesystem.entryInode(InodeNumber(ino), entry).value();
              e.attr.st_mode = typeBits(entry);
            }
          }
          fuse_add_direntry_plus(req, dst, room, name, &e, next);
          used += need;
        } else {
          struct stat st {};
          if (i < 2) {
            st.st_ino = i == 0 ? ino : filesystem.parentAttributes(InodeNumber(ino)).st_ino;
            st.st_mode = S_IFDIR;
          } else {
            const auto& entry = entries[i - 2];
            st.st_ino = filesystem.entryInode(InodeNumber(ino), entry).value();
            st.st_mode = typeBits(entry);
          }
          size_t need = fuse_add_direntry(req, dst, room, name, &st, next);
          if (need > room) break;
          used += need;
        }
      }
      replied = true;
      fuse_reply_buf(req, buf.data(), used);
    });
  }

  static void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    readdirCommon(req, ino, size, off, fi, false);
  }
  static void readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          fuse_file_info* fi) {
    readdirCommon(req, ino, size, off, fi, true);
  }

  using BlobHandle = std::shared_ptr<const Bytes>;

  static void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (server(req).noOpen_ && (fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC)) {
      return (void)fuse_reply_err(req, ENOSYS);
    }
    guard(req, "open", [&](bool& replied) {
      if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        replied = true;
        return (void)fuse_reply_err(req, EROFS);
      }
      auto blob = fs(req).content(InodeNumber(ino));
      replied = true;
      if (!blob.ok()) return replyError(req, blob.error(), "open");
      fi->keep_cache = opts(req).keepCache;  // the content of a revision never changes
      fi->noflush = 1;
      fi->fh = reinterpret_cast<uint64_t>(new BlobHandle(std::move(blob).value()));
      if (fuse_reply_open(req, fi) != 0) delete reinterpret_cast<BlobHandle*>(fi->fh);
    });
  }

  static void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    guard(req, "read", [&](bool& replied) {
      BlobHandle blob;
      if (fi->fh) {
        blob = *reinterpret_cast<BlobHandle*>(fi->fh);
      } else {  // zero-message open: find the content by inode
        auto content = fs(req).content(InodeNumber(ino));
        if (!content.ok()) {
          replied = true;
          return replyError(req, content.error(), "read");
        }
        blob = std::move(content).value();
      }
      const Bytes& data = *blob;
      size_t start = std::min(static_cast<size_t>(off), data.size());
      size_t len = std::min(size, data.size() - start);
      replied = true;
      fuse_reply_buf(req, data.data() + start, len);
    });
  }

  static void release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    delete reinterpret_cast<BlobHandle*>(fi->fh);
    fuse_reply_err(req, 0);
  }

  static void statfs(fuse_req_t req, fuse_ino_t) {
    struct statvfs st {};
    if (::statvfs(server(req).fs_.objects().cacheDirectory().c_str(), &st) != 0) {
      st = {};
      st.f_bsize = st.f_frsize = 4096;
    }
    st.f_namemax = NAME_MAX;
    fuse_reply_statfs(req, &st);
  }

  static void access(fuse_req_t req, fuse_ino_t, int mask) {
    fuse_reply_err(req, (mask & W_OK) ? EROFS : 0);
  }

  // No extended attributes. ENOSYS (not ENODATA) makes the kernel stop
  // asking: every later getxattr/listxattr answers EOPNOTSUPP without a
  // round trip. With ENODATA, `ls -l` cost two requests per entry (measured:
  // 58 GETXATTR for 14 entries listed twice).
  static void getxattr(fuse_req_t req, fuse_ino_t, const char*, size_t) {
    fuse_reply_err(req, ENOSYS);
  }

  static void listxattr(fuse_req_t req, fuse_ino_t, size_t) { fuse_reply_err(req, ENOSYS); }

  // Every operation that would change the tree: read-only for now.
  static void rofs(fuse_req_t req) { fuse_reply_err(req, EROFS); }
  static void setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) { rofs(req); }
  static void mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { rofs(req); }
  static void mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { rofs(req); }
  static void unlink(fuse_req_t req, fuse_ino_t, const char*) { rofs(req); }
  static void rmdir(fuse_req_t req, fuse_ino_t, const char*) { rofs(req); }
  static void symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { rofs(req); }
  static void rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*,
                     unsigned int) {
    rofs(req);
  }
  static void link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { rofs(req); }
  static void write(fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) {
    rofs(req);
  }
  static void create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
    rofs(req);
  }
  static void setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
    rofs(req);
  }
  static void removexattr(fuse_req_t req, fuse_ino_t, const char*) { rofs(req); }
  static void fallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
    rofs(req);
  }

  static fuse_lowlevel_ops table() {
    fuse_lowlevel_ops ops{};
    ops.init = init;
    ops.lookup = lookup;
    ops.forget = forget;
    ops.forget_multi = forgetMulti;
    ops.getattr = getattr;
    ops.readlink = readlink;
    ops.opendir = opendir;
    ops.readdir = readdir;
    ops.readdirplus = readdirplus;
    ops.releasedir = releasedir;
    ops.open = open;
    ops.read = read;
    ops.release = release;
    ops.statfs = statfs;
    ops.access = access;
    ops.getxattr = getxattr;
    ops.listxattr = listxattr;
    ops.setattr = setattr;
    ops.mknod = mknod;
    ops.mkdir = mkdir;
    ops.unlink = unlink;
    ops.rmdir = rmdir;
    ops.symlink = symlink;
    ops.rename = rename;
    ops.link = link;
    ops.write = write;
    ops.create = create;
    ops.setxattr = setxattr;
    ops.removexattr = removexattr;
    ops.fallocate = fallocate;
    return ops;
  }
};

hg::Result<std::unique_ptr<FuseServer>> FuseServer::mount(FileSystem& fs,
                                                          const MountOptions& options) {
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
  if (!server->session_) return hg::ioError(EINVAL, "cannot create the FUSE session");
  if (fuse_session_mount(server->session_, options.mountPoint.c_str()) != 0) {
    fuse_session_destroy(server->session_);
    server->session_ = nullptr;
    return hg::ioError(EIO, "cannot mount (is /dev/fuse available and fusermount3 installed?)",
                       options.mountPoint);
  }
  server->mounted_ = true;
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
  std::lock_guard lock(reportedMutex_);
  if (reported_.size() >= 4096) reported_.clear();  // bounded; old causes may log again
  return reported_.insert(message).second;
}

void FuseServer::requestExit() {
  if (session_) fuse_session_exit(session_);
}

FuseServer::~FuseServer() {
  if (session_) {
    if (mounted_) fuse_session_unmount(session_);
    fuse_session_destroy(session_);
  }
}

}  // namespace hgvfs::fs
