// SPDX-License-Identifier: BSL-1.0
/// \file
/// \brief The symbol-visibility macro of chunkpmr's public classes.
///
/// chunkpmr is compiled with hidden visibility (`-fvisibility=hidden
/// -fvisibility-inlines-hidden`), so a shared `libchunkpmr.so` exports only what is
/// marked with #CHUNKPMR_API, and a static `libchunkpmr.a` linked into a shared object
/// adds nothing to that object's dynamic symbol table.
///
/// The CMake target `chunkpmr::chunkpmr` and `chunkpmr.pc` define `CHUNKPMR_SHARED` for
/// everyone that compiles against the shared library (the library included). Without it
/// (the static library, the b2 build) #CHUNKPMR_API expands to nothing.
#pragma once

#if defined(CHUNKPMR_DOXYGEN)
/// \brief Marks a class or function of chunkpmr's public interface.
///
/// Expands to `__attribute__((visibility("default")))` when `CHUNKPMR_SHARED` is
/// defined (compiling the shared library or code that links it), and to nothing
/// otherwise. On ELF the same attribute serves the library and its users, so no
/// separate import form exists. chunkpmr supports glibc and pthreads only.
#define CHUNKPMR_API
/// \brief Keeps a member of a #CHUNKPMR_API class out of the shared library's exports
/// (for private members that no inline function of the headers calls).
///
/// Expands to `__attribute__((visibility("hidden")))` when `CHUNKPMR_SHARED` is defined,
/// and to nothing otherwise.
#define CHUNKPMR_LOCAL
#elif defined(CHUNKPMR_SHARED)
#define CHUNKPMR_API __attribute__((visibility("default")))
#define CHUNKPMR_LOCAL __attribute__((visibility("hidden")))
#else
#define CHUNKPMR_API
#define CHUNKPMR_LOCAL
#endif
