// SPDX-License-Identifier: BSL-1.0
// chunkpmr — the library version. Kept in step with project(VERSION) in CMakeLists.txt
// and the version in Jamroot; test/test_version.cpp checks that all three agree.
#pragma once

#define CHUNKPMR_VERSION_MAJOR 0
#define CHUNKPMR_VERSION_MINOR 2
#define CHUNKPMR_VERSION_PATCH 0
// major * 10000 + minor * 100 + patch
#define CHUNKPMR_VERSION \
  (CHUNKPMR_VERSION_MAJOR * 10000 + CHUNKPMR_VERSION_MINOR * 100 + CHUNKPMR_VERSION_PATCH)
