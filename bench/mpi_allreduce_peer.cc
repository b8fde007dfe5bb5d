// OpenMPI allreduce peer of the allreduce benchmark (links MPI only, not dtrain).
//
//   mpirun --allow-run-as-root --oversubscribe -np N
//       mpi_allreduce_peer --world N --plan BYTES:WARMUP:ITERS,...   (one command line)
//
// MPI_Allreduce(MPI_IN_PLACE, MPI_FLOAT, MPI_SUM) over MPI_COMM_WORLD with the library's own
// algorithm choice (on one machine: the vader shared-memory transport). Rank 0 prints one result
// line per size (peer_common.h: protocol and timing method). --world must equal the number of
// ranks mpirun started.
#include <mpi.h>

#include <iostream>
#include <string>
#include <vector>

#include "peer_common.h"

namespace dtrain::bench {
namespace {

int peer_main(int argc, char** argv) {
  PeerArgs args = parse_peer_args(argc, argv);
  int rank = 0, world = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world != args.world) {
    if (rank == 0) {
      std::cerr << "mpi_allreduce_peer: --world " << args.world << " but mpirun started " << world
                << " ranks\n";
    }
    return 2;
  }

  size_t max_count = 0;
  for (const PlannedSize& s : args.plan) max_count = std::max(max_count, s.bytes / sizeof(float));
  FloatBuffer buffer(max_count);

  bool all_ok = true;
  for (const PlannedSize& size : args.plan) {
    const int count = static_cast<int>(size.bytes / sizeof(float));
    std::fill(buffer.data(), buffer.data() + count, 0.0f);
    std::vector<double> seconds = time_iterations(
        size.warmup, size.iters, [] { MPI_Barrier(MPI_COMM_WORLD); },
        [&] {
          MPI_Allreduce(MPI_IN_PLACE, buffer.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        },
        args.gap);
    MPI_Allreduce(MPI_IN_PLACE, seconds.data(), static_cast<int>(seconds.size()), MPI_DOUBLE,
                  MPI_MAX, MPI_COMM_WORLD);
    fill_check_values(buffer.data(), count, rank);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, buffer.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    bool ok = check_sum(buffer.data(), count, world);
    all_ok = all_ok && ok;
    if (rank == 0) {
      std::cout << result_line("mpi", "MPI_Allreduce", world, size, summarize(seconds), "openmpi",
                               ok)
                << std::endl;
    }
  }
  int mine = all_ok ? 1 : 0, everyone = 0;
  MPI_Allreduce(&mine, &everyone, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return everyone ? 0 : 1;
}

}  // namespace
}  // namespace dtrain::bench

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int code = 2;
  try {
    code = dtrain::bench::peer_main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mpi_allreduce_peer: " << e.what() << "\n";
  }
  MPI_Finalize();
  return code;
}
