// hgvfs_manifest_bench: single-core throughput of hg::Manifest::parse.
//
//   hgvfs_manifest_bench REPO [REV] [--seconds S] [--min-iterations N] [--cpu C]
//
// Reads the manifest text of REV (default tip) once through hgbridge, then
// parses copies of it over and over on the calling thread (pinned to one CPU
// when --cpu is given) until both S seconds (default 3) and N iterations
// (default 5) have passed. Only the parse is timed: each copy of the text is
// made before its clock starts, and destroying the result happens after it
// stops. Lookups of every path through Manifest::find are timed the same way.
//
// Prints one line of key=value pairs (stable, for scripts/bench-hgbridge):
//   manifest_bytes entries iterations parse_best_s parse_median_s
//   parse_best_mbps parse_median_mbps entries_per_s find_per_s
// MB here is 10^6 bytes.

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "hgbridge/manifest.h"
#include "hgbridge/repository.h"

namespace {

using Clock = std::chrono::steady_clock;
using hgvfs::Bytes;
using hgvfs::ByteView;

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: hgvfs_manifest_bench REPO [REV] [--seconds S] [--min-iterations N] "
               "[--cpu C]\n");
  std::exit(2);
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "hgvfs_manifest_bench: %s\n", what.c_str());
  std::exit(1);
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  double minSeconds = 3.0;
  long minIterations = 5;
  int cpu = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--seconds") {
      minSeconds = std::atof(next());
    } else if (a == "--min-iterations") {
      minIterations = std::atol(next());
    } else if (a == "--cpu") {
      cpu = std::atoi(next());
    } else if (a == "-h" || a == "--help") {
      usage();
    } else if (a.rfind("--", 0) == 0) {
      usage();  // unknown option; "-1" and other negative revisions are positional
    } else {
      positional.push_back(a);
    }
  }
  if (positional.empty() || positional.size() > 2) usage();
  const std::string rev = positional.size() == 2 ? positional[1] : "tip";

  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
      fail("cannot pin to cpu " + std::to_string(cpu));
  }

  auto repo = hgvfs::hg::Repository::open(positional[0]);
  if (!repo) fail(repo.error().message());
  auto r = (*repo)->lookup(rev);
  if (!r) fail(r.error().message());
  auto cs = (*repo)->changeset(*r);
  if (!cs) fail(cs.error().message());
  auto text = (*repo)->manifestRevlog().rawText(cs->manifest);
  if (!text) fail(text.error().message());
  const Bytes& manifestText = *text;

  std::vector<double> parseTimes;
  size_t entries = 0;
  const auto start = Clock::now();
  while (static_cast<long>(parseTimes.size()) < minIterations ||
         seconds(Clock::now() - start) < minSeconds) {
    Bytes copy = manifestText;
    const auto t0 = Clock::now();
    auto m = hgvfs::hg::Manifest::parse(std::move(copy));
    const auto t1 = Clock::now();
    if (!m) fail(m.error().message());
    entries = m->size();
    parseTimes.push_back(seconds(t1 - t0));
  }

  // Lookups: every path of the manifest, in a shuffled-but-fixed order so the
  // binary search is not helped by the previous probe's cache lines.
  auto m = hgvfs::hg::Manifest::parse(Bytes(manifestText));
  if (!m) fail(m.error().message());
  std::vector<Bytes> paths;
  paths.reserve(m->size());
  for (const auto& e : m->entries()) paths.emplace_back(e.path);
  uint64_t s = 0x9e3779b97f4a7c15ull;  // deterministic Fisher-Yates over an LCG
  for (size_t i = paths.size(); i > 1; --i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(paths[i - 1], paths[(s >> 33) % i]);
  }
  size_t found = 0;
  const auto f0 = Clock::now();
  for (const auto& p : paths) found += m->find(p) != nullptr;
  const double findSeconds = seconds(Clock::now() - f0);
  if (found != paths.size()) fail("find missed paths that parse returned");

  const double best = *std::min_element(parseTimes.begin(), parseTimes.end());
  const double med = median(parseTimes);
  const double mb = static_cast<double>(manifestText.size()) / 1e6;
  std::printf(
      "manifest_bytes=%zu entries=%zu iterations=%zu parse_best_s=%.6f parse_median_s=%.6f "
      "parse_best_mbps=%.1f parse_median_mbps=%.1f entries_per_s=%.0f find_per_s=%.0f\n",
      manifestText.size(), entries, parseTimes.size(), best, med, mb / best, mb / med,
      static_cast<double>(entries) / med,
      findSeconds > 0 ? static_cast<double>(paths.size()) / findSeconds : 0.0);
  return 0;
}
