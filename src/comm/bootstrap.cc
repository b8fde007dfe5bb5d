// connect_world (env.h): the store and communicator of a process started by `dtrain launch`,
// torchrun or mpirun.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

#include "dtrain/communicator.h"
#include "dtrain/env.h"
#include "dtrain/error.h"
#include "dtrain/file_store.h"
#include "dtrain/memory_store.h"
#include "dtrain/prefix_store.h"
#include "dtrain/tcp_store.h"

namespace dtrain {
namespace {

// Rank 0's store when the launcher hosts none: the server and rank 0's own client, alive while
// the communicator holds the client (it keeps its store for split()).
struct ServedStore {
  std::unique_ptr<TcpStoreServer> server;
  std::shared_ptr<TcpStore> client;  // declared after the server: destroyed first
};

std::shared_ptr<Store> serve_on_rank0(const WorldInfo& world, const TcpStoreOptions& options) {
  auto [host, port] = parse_host_port(world.store_addr, "the store address");
  // Several nodes: listen on every interface, as dtrain launch's node 0 does (a host name may
  // resolve to a loopback address on its own machine).
  const bool several_nodes = world.nnodes > 1 || world.local_world_size < world.world_size;
  const std::string bind_host = several_nodes ? "0.0.0.0" : host;
  auto served = std::make_shared<ServedStore>();
  try {
    served->server = std::make_unique<TcpStoreServer>(bind_host, port, options);
  } catch (const IoError& e) {
    throw IoError(std::string("rank 0 cannot serve the store at ") + world.store_addr + " (" +
                  e.what() + "); set DTRAIN_STORE_ADDR to a free host:port of rank 0's machine");
  }
  if (world.secret.empty()) {
    spdlog::warn(
        "the store at {} has no secret (DTRAIN_SECRET is not set): anyone who can reach it can "
        "join the job; set DTRAIN_SECRET to the same value for every rank",
        world.store_addr);
  }
  served->client = TcpStore::connect(world.store_addr, options);
  return {served, served->client.get()};
}

// A FileStore in `dir`, made private (0700) if it is new; IoError if it is not a folder of ours
// that only we may enter.
std::shared_ptr<Store> private_file_store(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw IoError("cannot create the store folder '" + dir + "': " + std::strerror(errno));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    throw IoError("cannot inspect the store folder '" + dir + "': " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    throw IoError("the store folder '" + dir +
                  "' is not a private folder of this user (mode 0700); refusing to use it");
  }
  return std::make_shared<FileStore>(dir);
}

}  // namespace

std::unique_ptr<Communicator> connect_world(const WorldInfo& world, CommOptions options) {
  if (world.timeout) {
    options.timeout = *world.timeout;
    options.connect_timeout = *world.timeout;
  }
  if (!world.listen_host.empty()) options.hostname = world.listen_host;
  // The run's secret also keys the transport's connection handshakes (unless the caller set one).
  // Without one, rank 0 draws a key and passes it through the store (communicator.h).
  if (options.secret.empty()) options.secret = world.secret;
  std::shared_ptr<Store> store;
  if (!world.store_dir.empty()) {
    store = private_file_store(world.store_dir);
  } else if (!world.store_addr.empty()) {
    TcpStoreOptions store_options;
    store_options.secret = world.secret;
    store_options.connect_timeout = options.connect_timeout;
    if (world.store_on_rank0 && world.rank == 0) {
      store = serve_on_rank0(world, store_options);
    } else {
      store = TcpStore::connect(world.store_addr, store_options);
    }
  } else if (world.world_size == 1) {
    store = std::make_shared<MemoryStore>();
  } else {
    throw InvalidArgumentError("a world of " + std::to_string(world.world_size) +
                               " ranks needs a store: set DTRAIN_STORE_ADDR (dtrain launch does)");
  }
  store = std::make_shared<PrefixStore>(world.run_id, std::move(store));
  return Communicator::create(std::move(store), world.rank, world.world_size, options);
}

}  // namespace dtrain
