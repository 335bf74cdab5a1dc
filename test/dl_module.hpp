// SPDX-License-Identifier: BSL-1.0
// The interface between test_lifecycle and dl_module, a module loaded with dlopen()
// that contains its own copy of chunkpmr (statically linked) and owns a resource.
#pragma once

#include <pthread.h>

extern "C" {

struct chunkpmr_dl_thread {
  // Set by the test before the call: the thread's body, and the condition it waits on
  // (wait(ctx) returns when the test lets the thread go). The body is the test's own
  // code, so that once the module is unloaded no code of the module is left on the
  // thread's stack: whatever still runs module code then is chunkpmr's own doing.
  void* (*thread_main)(void* self);
  void (*wait)(void* ctx);
  void* ctx;
  // Set by the module before the thread starts: allocates from the module's resource
  // on the calling thread (leaving a few blocks live for the resource's destructor,
  // which runs at dlclose) and returns 0 if every payload read back intact.
  int (*use)(void);
  pthread_t thread;
};

// Starts a thread running t->thread_main(t); returns pthread_create's result.
int chunkpmr_dl_start_thread(struct chunkpmr_dl_thread* t);
typedef int (*chunkpmr_dl_start_thread_fn)(struct chunkpmr_dl_thread* t);

}  // extern "C"
