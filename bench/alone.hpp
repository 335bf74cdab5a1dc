// SPDX-License-Identifier: BSL-1.0
// The fresh-process mode shared by the benchmark programs: `--alone=NAME --items=N` runs
// one workload without Google Benchmark and prints one JSON line, `--alone=list` prints
// the names. A malloc's behaviour depends on what the process did before, so the
// headline workloads are also measured this way, each in a process of its own.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/resource.h>

namespace bench_alone {

inline long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

inline long max_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;  // KiB on Linux
}

// Takes --alone=NAME and --items=N out of argv (the rest is left for Google Benchmark).
// Without --alone returns -1. Otherwise runs it — `list` prints `names`, a name calls
// `run(index of the name, items)` — and returns main's exit status (2 on a bad flag or
// an unknown name).
inline int run_alone_if_asked(int& argc, char** argv, const std::vector<std::string>& names,
                              const std::function<int(std::size_t, long)>& run) {
  std::string alone;
  long items = 100000;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.rfind("--alone=", 0) == 0) {
      alone = std::string(arg.substr(8));
    } else if (arg.rfind("--items=", 0) == 0) {
      char* end = nullptr;
      items = std::strtol(argv[i] + 8, &end, 10);
      if (*end != '\0' || items <= 0) {
        std::fprintf(stderr, "--items= takes a positive integer\n");
        return 2;
      }
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  argv[argc] = nullptr;
  if (alone.empty()) return -1;
  if (alone == "list") {
    for (const std::string& name : names) std::printf("%s\n", name.c_str());
    return 0;
  }
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == alone) return run(i, items);
  std::fprintf(stderr, "unknown workload '%s' (--alone=list prints the names)\n", alone.c_str());
  return 2;
}

}  // namespace bench_alone
