#pragma once
// The fs layer's logger (store/log.h says how layer loggers are made).

#include "store/log.h"

namespace hgvfs::fs {
HGVFS_LAYER_LOGGER("fs")
}  // namespace hgvfs::fs
