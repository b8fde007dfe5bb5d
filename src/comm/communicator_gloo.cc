// Communicator::create_gloo: a Communicator over GlooTransport (src/comm/gloo).
#include "comm/gloo/gloo_transport.h"
#include "dtrain/communicator.h"
#include "dtrain/prefix_store.h"

namespace dtrain {

std::unique_ptr<Communicator> Communicator::create_gloo(std::shared_ptr<Store> store, int rank,
                                                        int size, CommOptions options) {
  if (!store) throw InvalidArgumentError("create_gloo: null store");
  gloo_backend::GlooTransportOptions transport_options;
  transport_options.hostname = options.hostname;
  transport_options.connect_timeout = options.connect_timeout;
  if (options.progress_thread_nice < 0 || options.progress_thread_nice > 19) {
    throw InvalidArgumentError("create_gloo: progress_thread_nice must be 0..19, got " +
                               std::to_string(options.progress_thread_nice));
  }
  transport_options.event_loop_batch = options.progress_thread_batch;
  transport_options.event_loop_nice = options.progress_thread_nice;
  auto scoped = std::make_shared<PrefixStore>("comm", std::move(store));
  auto transport = gloo_backend::GlooTransport::connect(scoped, rank, size, transport_options);
  return std::make_unique<Communicator>(std::move(transport), std::move(options));
}

}  // namespace dtrain
