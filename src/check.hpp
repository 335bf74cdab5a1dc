// SPDX-License-Identifier: BSL-1.0
// chunkpmr — precondition checks.
//
// CHUNKPMR_ASSERT is compiled into debug builds only (NDEBUG off, or
// CHUNKPMR_DEBUG_CHECKS defined): it catches misuse that is cheap to detect.
// chunkpmr_fatal() is for corruption that must never be continued from (a chunk's
// reference count going below zero), in every build.
#pragma once

namespace chunkpmr::detail {

[[noreturn]] void fatal(const char* message, const char* file, int line) noexcept;

}  // namespace chunkpmr::detail

#if !defined(NDEBUG) || defined(CHUNKPMR_DEBUG_CHECKS)
#define CHUNKPMR_DEBUG_CHECKS_ENABLED 1
#define CHUNKPMR_ASSERT(cond, message) \
  ((cond) ? static_cast<void>(0) : ::chunkpmr::detail::fatal(message, __FILE__, __LINE__))
#else
#define CHUNKPMR_DEBUG_CHECKS_ENABLED 0
#define CHUNKPMR_ASSERT(cond, message) static_cast<void>(0)
#endif

#define CHUNKPMR_FATAL(message) ::chunkpmr::detail::fatal(message, __FILE__, __LINE__)
