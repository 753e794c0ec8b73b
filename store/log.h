#pragma once
// The store layer's logger. It shares the sinks of spdlog's default logger
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

inline spdlog::logger& log() {
  static auto logger = makeLayerLogger("store");
  return *logger;
}

}  // namespace hgvfs::store
