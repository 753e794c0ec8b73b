#pragma once
// The status layer's logger (store/log.h says how layer loggers are made).

#include "store/log.h"

namespace hgvfs::status {
HGVFS_LAYER_LOGGER("status")
}  // namespace hgvfs::status
