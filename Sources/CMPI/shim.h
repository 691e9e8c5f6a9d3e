#pragma once
// Open MPI as Swift can call it. Its handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_BYTE, …) are macros over
// the addresses of library globals, which Swift does not import, so each call the worker needs is
// wrapped here in a static inline function over plain C types. Every function returns MPI's error code
// (MPI_SUCCESS, 0, on success); the world communicator's error handler is set to return codes rather
// than abort, so a failed call reaches Swift as an error.
#include <mpi.h>
#include <stdint.h>

static inline int lineage_mpi_init(int *rank, int *size) {
  int provided = 0;
  int code = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
  if (code != MPI_SUCCESS) return code;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  code = MPI_Comm_rank(MPI_COMM_WORLD, rank);
  if (code != MPI_SUCCESS) return code;
  return MPI_Comm_size(MPI_COMM_WORLD, size);
}

static inline int lineage_mpi_finalize(void) { return MPI_Finalize(); }

static inline int lineage_mpi_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }

/// Sends `count` floats to `partner` and receives `count` floats from it, in one deadlock-free call.
static inline int lineage_mpi_exchange_floats(const float *send, int sendCount, float *receive, int receiveCount,
                                              int partner) {
  return MPI_Sendrecv(send, sendCount, MPI_FLOAT, partner, 7, receive, receiveCount, MPI_FLOAT, partner, 7,
                      MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

/// Every rank's byte count (`counts[size]`), then every rank's bytes, in rank order.
static inline int lineage_mpi_allgather_counts(int64_t count, int64_t *counts) {
  return MPI_Allgather(&count, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, MPI_COMM_WORLD);
}

static inline int lineage_mpi_allgatherv_bytes(const uint8_t *send, int sendCount, uint8_t *receive,
                                               const int *counts, const int *offsets) {
  return MPI_Allgatherv(send, sendCount, MPI_BYTE, receive, counts, offsets, MPI_BYTE, MPI_COMM_WORLD);
}

static inline int lineage_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
