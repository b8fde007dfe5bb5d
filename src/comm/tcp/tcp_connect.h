// Connection set-up of the TCP transport (private to src/comm/tcp): one authenticated TCP
// connection between every two ranks of a group.
//
// Every rank listens on a fresh port of `hostname`, publishes "addr/<rank>" in the store, then,
// in one poll() loop on the caller's thread: connects to every lower rank (retrying refused
// connections until the deadline) and runs the client side of the handshake
// (tcp_handshake.h), and accepts connections from the higher ranks and runs the server side.
// The listener closes as soon as this rank has all its connections: after set-up no port of
// the transport is open.
//
// Strangers. A connection to the listener that does not complete a valid client hello within
// handshake_timeout is closed, and so is one whose hello is malformed or wrongly signed; nothing
// it sent reaches a transport. At most max_pending_handshakes unauthenticated connections are
// kept; past that the oldest is dropped (a legitimate rank whose connection was dropped
// reconnects). Only the handshake's fixed-size messages are buffered before authentication.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "comm/store/store_socket.h"
#include "comm/tcp/tcp_handshake.h"
#include "dtrain/deadline.h"
#include "dtrain/store.h"

namespace dtrain::tcp {

struct MeshOptions {
  std::string hostname = "127.0.0.1";  // listen address ("0.0.0.0": every interface)
  std::string key;                     // the group's key (never sent)
  Session session{};
  std::chrono::milliseconds handshake_timeout{10000};
  size_t max_pending_handshakes = 64;
};

struct MeshStats {
  size_t rejected = 0;  // connections dropped for a bad, late or unsigned hello
  size_t evicted = 0;   // unauthenticated connections dropped to make room
};

// Returns the connected, authenticated, non-blocking sockets, indexed by rank (this rank's slot
// is empty). TimeoutError naming the ranks still missing if the deadline passes; IoError if this
// rank cannot listen or a peer's address cannot be used.
std::vector<store_detail::UniqueFd> connect_mesh(Store& store, int rank, int size,
                                                 const MeshOptions& options, Deadline deadline,
                                                 MeshStats* stats);

}  // namespace dtrain::tcp
