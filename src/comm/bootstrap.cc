// connect_world (env.h): the store and communicator of a process started by `dtrain launch`
// (or mpirun plus DTRAIN_STORE_ADDR).
#include <memory>

#include "dtrain/communicator.h"
#include "dtrain/env.h"
#include "dtrain/error.h"
#include "dtrain/memory_store.h"
#include "dtrain/prefix_store.h"
#include "dtrain/tcp_store.h"

namespace dtrain {

std::unique_ptr<Communicator> connect_world(const WorldInfo& world, CommOptions options) {
  if (world.timeout) {
    options.timeout = *world.timeout;
    options.connect_timeout = *world.timeout;
  }
  if (!world.listen_host.empty()) options.hostname = world.listen_host;
  // The run's secret also keys the transport's connection handshakes (unless the caller set one).
  if (options.secret.empty()) options.secret = world.secret;
  std::shared_ptr<Store> store;
  if (world.store_addr.empty()) {
    if (world.world_size != 1) {
      throw InvalidArgumentError(
          "a world of " + std::to_string(world.world_size) +
          " ranks needs a store: set DTRAIN_STORE_ADDR (dtrain launch does)");
    }
    store = std::make_shared<MemoryStore>();
  } else {
    TcpStoreOptions store_options;
    store_options.secret = world.secret;
    store_options.connect_timeout = options.connect_timeout;
    store = std::make_shared<PrefixStore>(world.run_id,
                                          TcpStore::connect(world.store_addr, store_options));
  }
  return Communicator::create(std::move(store), world.rank, world.world_size, options);
}

}  // namespace dtrain
