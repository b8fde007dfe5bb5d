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
// Without DTRAIN_RANK, OpenMPI's OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK / _LOCAL_SIZE are used
// (a job started by mpirun); DTRAIN_STORE_ADDR, DTRAIN_RUN_ID, ... may still be added to them.
// With neither, the process is a world of 1 with no store.
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
  enum class Source { kNone, kDtrain, kOpenMpi };  // which variables described the world

  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  int local_world_size = 1;
  int node_rank = 0;
  int nnodes = 1;
  std::string store_addr;  // "host:port"; empty = no store (only valid for a world of 1)
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
// when one is malformed (not a decimal integer, out of range, "host:port" without a valid port),
// when a required one is missing (DTRAIN_RANK needs DTRAIN_WORLD_SIZE and the reverse; a world
// of more than 1 needs DTRAIN_STORE_ADDR unless it came from mpirun), or when they disagree
// (rank >= world size, ...). Defaults: local rank = rank and local world size = world size
// (one node), run id "dtrain".
WorldInfo world_from_env(const EnvLookup& lookup);
WorldInfo world_from_env();

// Splits "host:port"; InvalidArgumentError naming `what` when malformed. "[::1]:29500" allowed.
std::pair<std::string, uint16_t> parse_host_port(const std::string& text, std::string_view what);

// Connects this process to its world: a TcpStore at world.store_addr (authenticated with
// world.secret, under a PrefixStore of world.run_id), then a Gloo communicator over it. A world
// of 1 without a store uses a private MemoryStore. world.timeout, when set, replaces
// options.timeout and options.connect_timeout; world.listen_host, when set, options.hostname.
// Collective: every rank of the world calls it. Throws InvalidArgumentError (a world of more
// than 1 without a store), TimeoutError / PeerLostError / UnauthenticatedError from rendezvous.
// Defined in dtrain_comm (src/comm/bootstrap.cc).
std::unique_ptr<Communicator> connect_world(const WorldInfo& world, CommOptions options = {});

}  // namespace dtrain
