// SPDX-License-Identifier: BSL-1.0
/// \file
/// \brief The library version, as macros usable in `#if`.
///
/// Kept in step with project(VERSION) in CMakeLists.txt and the version in Jamroot;
/// test/test_version.cpp checks that all three agree. Versions follow semantic
/// versioning; before 1.0 a minor version may change the interface (and the shared
/// library's SONAME, `libchunkpmr.so.MAJOR.MINOR`, changes with it).
#pragma once

/// \brief The major version: 0 until the interface is declared stable.
#define CHUNKPMR_VERSION_MAJOR 0
/// \brief The minor version.
#define CHUNKPMR_VERSION_MINOR 2
/// \brief The patch version.
#define CHUNKPMR_VERSION_PATCH 0
/// \brief The version as one number: `MAJOR * 10000 + MINOR * 100 + PATCH`
/// (200 for 0.2.0), for comparisons such as `#if CHUNKPMR_VERSION >= 200`.
#define CHUNKPMR_VERSION \
  (CHUNKPMR_VERSION_MAJOR * 10000 + CHUNKPMR_VERSION_MINOR * 100 + CHUNKPMR_VERSION_PATCH)
