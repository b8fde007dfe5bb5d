#!/usr/bin/env bash
# A simulated cluster on one machine: N network namespaces dtc0..dtc{N-1}, each with one veth
# interface (10.77.0.(i+1)/24) joined by a bridge in the root namespace, every veth direction
# shaped with tc tbf to RATE (so each "node" has a full-duplex RATE link to a switch).
#
#   bench/compression/netns_setup.sh up N [RATE]     (root; RATE default 1gbit)
#   bench/compression/netns_setup.sh down N
set -euo pipefail
cmd=${1:?up|down}
n=${2:?number of namespaces}
rate=${3:-1gbit}
bridge=dtcbr0
if [[ $cmd == down ]]; then
  for ((i = 0; i < n; i++)); do
    ip netns del "dtc$i" 2>/dev/null || true
    ip link del "dtcv$i" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  exit 0
fi
ip link add "$bridge" type bridge
ip link set "$bridge" up
for ((i = 0; i < n; i++)); do
  ns=dtc$i
  ip netns add "$ns"
  ip link add "dtcv$i" type veth peer name eth0 netns "$ns"
  ip link set "dtcv$i" master "$bridge" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip addr add "10.77.0.$((i + 1))/24" dev eth0
  ip netns exec "$ns" ip link set eth0 up
  # Egress of the node, and egress towards it (= its ingress): RATE each way. burst: a few ms
  # of traffic at 1 Gbit/s; latency bounds the queue.
  ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 20ms
  tc qdisc add dev "dtcv$i" root tbf rate "$rate" burst 256kb latency 20ms
done
