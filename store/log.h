#pragma once
// Layer loggers (one per layer, named after it). Each shares the sinks of spdlog's default logger
// as they are when first used, so the daemon sets those up first.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace hgvfs::store {

inline std::shared_ptr<spdlog::logger> makeLayerLogger(const std::string& name) {
  auto base = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(name, base->sinks().begin(), base->sinks().end());
  logger->set_level(base->level());
  return logger;
}

// Defines `log()`, the logger of the layer whose namespace it stands in.
#define HGVFS_LAYER_LOGGER(name)                                \
  inline spdlog::logger& log() {                                \
    static auto logger = ::hgvfs::store::makeLayerLogger(name); \
    return *logger;                                             \
  }

HGVFS_LAYER_LOGGER("store")

}  // namespace hgvfs::store
