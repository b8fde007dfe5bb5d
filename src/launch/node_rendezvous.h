// NodeRendezvous: how the launchers of a job's nodes meet through the run's store.
//
// Protocol (keys outside every run's prefix, so workers never see them):
//   node 0 hosts the TcpStoreServer and sets  dtrain.launch/run_id = <run id>
//   every node (0 included) then sets         dtrain.launch/<run id>/joined/<node rank>
//   and waits until all nnodes joined keys exist (bounded by store_timeout) before its workers
//   start; so a job starts on all nodes or on none.
//   At the end every node sets                dtrain.launch/<run id>/finished/<node rank>
//   and node 0 keeps serving until all finished keys exist (at most store_timeout), so a slower
//   node's workers do not lose the store when node 0's workers are done.
// A single node hosts the store and skips the barriers.
// Node 0 also picks MASTER_PORT for PyTorch programs (a port that was free on every interface a
// moment ago) and, with several nodes or elastic, sets dtrain.launch/<run id>/master_port to it;
// the other nodes read it, so every worker of the job is told the same port.
// Elastic jobs: node 0 also sets dtrain.launch/<run id>/next_worker_id = nnodes * nproc; a
// launcher with `join` connects like node k > 0, skips the barriers, and takes its worker ids
// with add(next_worker_id, nproc).
#pragma once

#include <memory>
#include <string>

#include "dtrain/launch.h"
#include "dtrain/tcp_store.h"
#include "launch/signal_watch.h"

namespace dtrain::launcher {

// `bytes` random bytes (getrandom) as 2 * bytes lowercase hex digits. IoError if that fails.
std::string random_hex(size_t bytes);

class NodeRendezvous {
 public:
  // Hosts or joins the store and, with several nodes, passes the start barrier. While waiting
  // it watches `signals`: SIGINT/SIGTERM/SIGHUP end the wait with AbortedError. Throws
  // IoError (bind), TimeoutError, UnauthenticatedError, MismatchError (--run-id differs from
  // node 0's).
  NodeRendezvous(const LaunchOptions& options, const std::string& secret, SignalWatch& signals);
  ~NodeRendezvous() = default;  // node 0: stops serving
  NodeRendezvous(const NodeRendezvous&) = delete;
  NodeRendezvous& operator=(const NodeRendezvous&) = delete;

  const std::string& store_addr() const { return store_addr_; }  // what workers are told
  const std::string& run_id() const { return run_id_; }
  // The port of the job's MASTER_PORT (the same on every node).
  uint16_t master_port() const { return master_port_; }
  // The worker id (DTRAIN_RANK) of this node's first worker: node_rank * nproc, or for an elastic
  // --join launcher a fresh block of nproc ids from the store's counter.
  int first_worker_id() const { return first_worker_id_; }
  // A client of the run's store (full key names), for as long as this object lives; null for a
  // single node that is not elastic (it needs none).
  std::shared_ptr<Store> store() const { return client_; }

  // After this node's workers ended (several nodes): sets this node's finished key; node 0 then
  // waits for the other nodes' keys (at most store_timeout; a signal ends the wait). Never throws.
  void finish(SignalWatch& signals);

 private:
  void barrier(const std::string& phase, Deadline deadline, SignalWatch* signals);

  const LaunchOptions& options_;
  std::unique_ptr<TcpStoreServer> server_;  // node 0 only
  std::shared_ptr<TcpStore> client_;        // several nodes only
  std::string store_addr_;
  std::string run_id_;
  int first_worker_id_ = 0;
  uint16_t master_port_ = 0;
};

// A TCP port that was free on every IPv4 interface a moment ago (bind port 0, read it, close).
// Another process may take it before its user binds it. IoError if no socket can be bound.
uint16_t pick_free_port();

}  // namespace dtrain::launcher
