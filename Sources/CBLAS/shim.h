#pragma once
#include <cblas.h>

/* OpenBLAS internals that cblas.h does not declare (driver/others/memory.c and blas_server.c; exported
   by libopenblas). Its load-time constructor sizes its thread pool from blas_num_threads when that is
   already set, and from OPENBLAS_NUM_THREADS or the core count when it is 0; blas_cpu_number is the
   thread count its products use; blas_server_avail is non-zero once the pool is set up. */
extern int blas_num_threads;
extern int blas_cpu_number;
extern int blas_server_avail;

/* Presets OpenBLAS's pool to one thread, the caller, so that its constructor starts no helper thread.
   Must run before that constructor (Tensors calls it from .preinit_array, see Kernels/Matmul.swift). */
static inline void openblas_preset_single_thread(void) {
  blas_num_threads = 1;
  blas_cpu_number = 1;
}

/* The helper threads OpenBLAS's pool holds (the calling thread is not one). */
static inline int openblas_helper_thread_count(void) {
  return blas_server_avail && blas_num_threads > 1 ? blas_num_threads - 1 : 0;
}
