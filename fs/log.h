#pragma once
// The fs layer's logger (see store/log.h for how layer loggers are made).

#include "store/log.h"

namespace hgvfs::fs {

inline spdlog::logger& log() {
  static auto logger = store::makeLayerLogger("fs");
  return *logger;
}

}  // namespace hgvfs::fs
