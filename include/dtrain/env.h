// The process's place in the job, read once from the environment.
//
// The launcher (`dtrain launch`, docs/launch.md) hands every worker these variables:
//   DTRAIN_RANK, DTRAIN_WORLD_SIZE                 global rank in [0, world size)
//   DTRAIN_LOCAL_RANK, DTRAIN_LOCAL_WORLD_SIZE     rank among the workers of this node
//   DTRAIN_NODE_RANK, DTRAIN_NNODES                this node among the nodes
//   DTRAIN_STORE_ADDR                              host:port of the rendezvous TcpStore
//   DTRAIN_RUN_ID                                  the run's namespace inside the store
//   DTRAIN_SECRET                                  authenticates to the store
//   DTRAIN_TIMEOUT_MS (optional)                   bound on every collective and on connecting
//   DTRAIN_LISTEN_HOST (optional)                  address the workers' transports listen on
// (and torchrun's RANK, WORLD_SIZE, ... as well, for programs that read those).
//
// Without DTRAIN_RANK, a process started by another launcher is understood; the launcher then
// hosts no dtrain store, so rank 0 serves one (or the ranks share a folder):
//   torchrun: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE;
//     rank 0 serves a TcpStore at MASTER_ADDR and port MASTER_PORT + 1 (MASTER_PORT - 1 when
//     MASTER_PORT is 65535; MASTER_PORT itself is PyTorch's store), or at DTRAIN_STORE_ADDR.
//   mpirun (OpenMPI): OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK / _LOCAL_SIZE; on one node the
//     ranks share a FileStore in mpirun's private session folder
//     ($OMPI_MCA_orte_jobfam_session_dir/dtrain-<job id>-<hash of mpirun's URI>), which mpirun
//     removes when the job ends; across nodes rank 0 serves a TcpStore at DTRAIN_STORE_ADDR.
// DTRAIN_RUN_ID, DTRAIN_SECRET, DTRAIN_TIMEOUT_MS and DTRAIN_LISTEN_HOST apply to them too.
// With none of these, the process is a world of 1 with no store.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dtrain/communicator.h"

namespace dtrain {

struct WorldInfo {
  // Which variables described the world.
  enum class Source { kNone, kDtrain, kTorchrun, kOpenMpi };

  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  int local_world_size = 1;
  int node_rank = 0;
  int nnodes = 1;
  std::string store_addr;  // "host:port" of a TcpStore; empty = none
  // true: rank 0 serves the TcpStore at store_addr itself (torchrun, mpirun); false: someone else
  // does (dtrain launch).
  bool store_on_rank0 = false;
  std::string store_dir;  // a FileStore's folder (mpirun on one node); empty = none
  std::string run_id;      // prefix of this run's keys in the store
  std::string secret;      // empty = the store does not authenticate
  std::optional<std::chrono::milliseconds> timeout;  // DTRAIN_TIMEOUT_MS
  std::string listen_host;                           // empty = the communicator's default
  Source source = Source::kNone;
};

// Looks a variable up: its value, or nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Looks variables up in this process's environment.
EnvLookup process_env();

// Parses the variables above into a WorldInfo. Throws InvalidArgumentError naming the variable
// when one is malformed (not a decimal integer, out of range, "host:port" without a valid port,
// a MASTER_PORT that is not a port), when a required one is missing (a rank needs its world size
// and the reverse; a world of more than 1 needs a way to its store: DTRAIN_STORE_ADDR from dtrain
// launch, MASTER_ADDR and MASTER_PORT from torchrun, mpirun's session folder on one node), or
// when they disagree (rank >= world size, ...). Defaults: local rank = rank and local world size
// = world size (one node), node rank and number of nodes from the local world size, run id
// "dtrain".
WorldInfo world_from_env(const EnvLookup& lookup);
WorldInfo world_from_env();

// Splits "host:port"; InvalidArgumentError naming `what` when malformed. "[::1]:29500" allowed.
std::pair<std::string, uint16_t> parse_host_port(const std::string& text, std::string_view what);

// Connects this process to its world: the store (a TcpStore client of world.store_addr,
// authenticated with world.secret; with store_on_rank0, rank 0 first serves it; or a FileStore in
// world.store_dir), under a PrefixStore of world.run_id, then the communicator over it. A world
// of 1 without a store uses a private MemoryStore. world.timeout, when set, replaces
// options.timeout and options.connect_timeout; world.listen_host, when set, options.hostname.
// Rank 0 of a world whose TcpStore it serves without a secret logs a warning (anyone who can
// reach the port can join). Collective: every rank of the world calls it. Throws
// InvalidArgumentError (a world of more than 1 without a store), IoError (rank 0 cannot serve
// the store's port; the store folder is not private), TimeoutError / PeerLostError /
// UnauthenticatedError from rendezvous. Defined in dtrain_comm (src/comm/bootstrap.cc).
std::unique_ptr<Communicator> connect_world(const WorldInfo& world, CommOptions options = {});

}  // namespace dtrain
