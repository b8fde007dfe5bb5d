// Communicator::create and create_gloo: a Communicator over the transport the options name
// (src/comm/tcp, src/comm/gloo). A build without Gloo (-DDTRAIN_WITH_GLOO=OFF, or Gloo not found)
// has no src/comm/gloo: CommTransport::kGloo is then an InvalidArgumentError.
#if DTRAIN_HAVE_GLOO
#include "comm/gloo/gloo_transport.h"
#endif
#include "comm/tcp/tcp_transport.h"
#include "dtrain/communicator.h"
#include "dtrain/prefix_store.h"

namespace dtrain {

const char* comm_transport_name(CommTransport transport) {
  switch (transport) {
    case CommTransport::kTcp:
      return "tcp";
    case CommTransport::kGloo:
      return "gloo";
  }
  return "?";
}

CommTransport parse_comm_transport(const std::string& name) {
  if (name == "tcp") return CommTransport::kTcp;
  if (name == "gloo") return CommTransport::kGloo;
  throw InvalidArgumentError("unknown transport '" + name + "' (choices: tcp, gloo)");
}

std::unique_ptr<Communicator> Communicator::create(std::shared_ptr<Store> store, int rank, int size,
                                                   CommOptions options) {
  if (!store) throw InvalidArgumentError("Communicator::create: null store");
  if (options.progress_thread_nice < 0 || options.progress_thread_nice > 19) {
    throw InvalidArgumentError("Communicator::create: progress_thread_nice must be 0..19, got " +
                               std::to_string(options.progress_thread_nice));
  }
  auto scoped = std::make_shared<PrefixStore>("comm", std::move(store));
  std::unique_ptr<Transport> transport;
  if (options.transport == CommTransport::kGloo) {
#if DTRAIN_HAVE_GLOO
    gloo_backend::GlooTransportOptions o;
    o.hostname = options.hostname;
    o.connect_timeout = options.connect_timeout;
    o.event_loop_batch = options.progress_thread_batch;
    o.event_loop_nice = options.progress_thread_nice;
    transport = gloo_backend::GlooTransport::connect(scoped, rank, size, o);
#else
    throw InvalidArgumentError(
        "Communicator::create: transport 'gloo': dtrain was built without Gloo "
        "(-DDTRAIN_WITH_GLOO=OFF or Gloo not found); use transport 'tcp'");
#endif
  } else {
    tcp::TcpTransportOptions o;
    o.hostname = options.hostname;
    o.secret = options.secret;
    o.connect_timeout = options.connect_timeout;
    o.handshake_timeout = options.handshake_timeout;
    o.loop.batch = options.progress_thread_batch;
    o.loop.nice = options.progress_thread_nice;
    transport = tcp::TcpTransport::connect(scoped, rank, size, o);
  }
  return std::make_unique<Communicator>(std::move(transport), std::move(options));
}

std::unique_ptr<Communicator> Communicator::create_gloo(std::shared_ptr<Store> store, int rank,
                                                        int size, CommOptions options) {
  options.transport = CommTransport::kGloo;
  return create(std::move(store), rank, size, std::move(options));
}

}  // namespace dtrain
