// Key names of the elastic protocol (include/dtrain/elastic.h), relative to the protocol's
// PrefixStore, and the parsing of their decimal values.
#pragma once

#include <cstdint>
#include <string>

namespace dtrain::elastic {

inline constexpr char kRoundKey[] = "round";

// "r<round>/<name>". Built with append: `"r" + std::to_string(n)` trips a false -Wrestrict in
// g++ 12.
inline std::string round_key(int64_t round, const std::string& name) {
  std::string key = "r";
  key.append(std::to_string(round)).append("/").append(name);
  return key;
}
inline std::string count_key(int64_t round) {
  return round_key(round, "count");
}
inline std::string closed_key(int64_t round) {
  return round_key(round, "closed");
}
inline std::string waiting_key(int64_t round) {
  return round_key(round, "waiting");
}
inline std::string member_key(int64_t round, int64_t idx) {
  return round_key(round, "member/").append(std::to_string(idx));
}
inline std::string heartbeat_key(int64_t round, int rank) {
  return round_key(round, "hb/").append(std::to_string(rank));
}
// The record that a group expelled a worker (its launcher kills it; launch.h), and the number of
// such records so far. The launcher reads them under their full names
// (src/launch/expulsion_watch.h: "<run id>/elastic/..." with the trainer's prefix).
inline constexpr char kExpelledCountKey[] = "expelled_count";
inline std::string expelled_key(const std::string& worker_id) {
  return std::string("expelled/").append(worker_id);
}
// Prefix of the round's communicator keys; PrefixStore adds the trailing '/'.
inline std::string comm_key_prefix(int64_t round) {
  return round_key(round, "comm");
}

// The non-negative decimal integer stored at `key`; CorruptError naming the key otherwise.
int64_t parse_value(const std::string& key, const std::string& value);

}  // namespace dtrain::elastic
