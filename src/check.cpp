// SPDX-License-Identifier: BSL-1.0
#include "check.hpp"

#include <cstdio>
#include <cstdlib>

namespace chunkpmr::detail {

void fatal(const char* message, const char* file, int line) noexcept {
  std::fprintf(stderr, "%s [%s:%d]\n", message, file, line);
  std::abort();
}

}  // namespace chunkpmr::detail
