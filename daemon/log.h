#pragma once
// The daemon layer's logger (store/log.h says how layer loggers are made).

#include "store/log.h"

namespace hgvfs::daemon {
HGVFS_LAYER_LOGGER("daemon")
}  // namespace hgvfs::daemon
