#pragma once
// The posix_parity scenarios, each a sequence of steps on a fresh pair of
// directories (parity_harness.h), and the list the driver runs them from.
// Grouped by theme: parity_scenarios_files.cpp (open flags, write and read,
// mmap), _namespace.cpp (rename, unlink and rmdir, symlinks, directories),
// _metadata.cpp (modes and owners, times, xattrs), _nodes.cpp (special
// files, hard links), _concurrency.cpp (create races, locks), _random.cpp.

#include <span>
#include <string>

#include "tests/tools/parity_harness.h"

namespace hgvfs::parity {

void openFlags(Scenario& s, const Options& opt);
void writeRead(Scenario& s, const Options& opt);
void mmapScenario(Scenario& s, const Options& opt);
void renameScenario(Scenario& s, const Options& opt);
void unlinkRmdir(Scenario& s, const Options& opt);
void symlinks(Scenario& s, const Options& opt);
void directories(Scenario& s, const Options& opt);
void metadata(Scenario& s, const Options& opt);
void timesScenario(Scenario& s, const Options& opt);
void xattrs(Scenario& s, const Options& opt);
void specialFiles(Scenario& s, const Options& opt);
void hardlinks(Scenario& s, const Options& opt);
void exclRace(Scenario& s, const Options& opt);
void locks(Scenario& s, const Options& opt);
void randomized(Scenario& s, const Options& opt);

// Where the random scenario works, two levels down so that no symlink
// target it makes, "../../a" included, reaches outside the scenario's
// directory.
inline const std::string kRandomRoot = "w/ns/";

// Every scenario, in the order a full run takes them (and --list shows).
std::span<const ScenarioDef> allScenarios();

// The scenario called `name`, or nullptr.
const ScenarioDef* findScenario(const std::string& name);

}  // namespace hgvfs::parity
