#include "dtrain/env.h"

#include <charconv>
#include <cstdlib>

#include "dtrain/error.h"

namespace dtrain {
namespace {

// A whole-string decimal integer in [min, max]; InvalidArgumentError naming `name` otherwise.
int64_t parse_int(const std::string& name, const std::string& text, int64_t min, int64_t max) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    throw InvalidArgumentError(name + "='" + text + "' is not a decimal integer");
  }
  if (value < min || value > max) {
    throw InvalidArgumentError(name + "=" + text + " is out of range [" + std::to_string(min) +
                               ", " + std::to_string(max) + "]");
  }
  return value;
}

class Reader {
 public:
  explicit Reader(const EnvLookup& lookup) : lookup_(lookup) {}

  std::optional<std::string> text(const std::string& name) const {
    auto value = lookup_(name);
    if (value && value->empty()) return std::nullopt;  // set but empty counts as unset
    return value;
  }
  std::optional<int> integer(const std::string& name, int64_t min, int64_t max) const {
    auto value = text(name);
    if (!value) return std::nullopt;
    return static_cast<int>(parse_int(name, *value, min, max));
  }
  int required(const std::string& name, const std::string& because, int64_t min,
               int64_t max) const {
    auto value = integer(name, min, max);
    if (!value) throw InvalidArgumentError(name + " is not set (" + because + ")");
    return *value;
  }

 private:
  const EnvLookup& lookup_;
};

constexpr int64_t kMaxRanks = 1 << 20;

void check_below(const char* what, int value, const char* bound_name, int bound) {
  if (value >= bound) {
    throw InvalidArgumentError(std::string(what) + "=" + std::to_string(value) + " must be below " +
                               bound_name + "=" + std::to_string(bound));
  }
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

std::pair<std::string, uint16_t> parse_host_port(const std::string& text, std::string_view what) {
  auto colon = text.rfind(':');
  std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || colon + 1 >= text.size()) {
    throw InvalidArgumentError(std::string(what) + "='" + text + "' is not host:port");
  }
  auto port = parse_int(std::string(what) + " port", text.substr(colon + 1), 1, 65535);
  return {host, static_cast<uint16_t>(port)};
}

WorldInfo world_from_env(const EnvLookup& lookup) {
  Reader env(lookup);
  WorldInfo world;
  if (env.text("DTRAIN_RANK") || env.text("DTRAIN_WORLD_SIZE")) {
    world.source = WorldInfo::Source::kDtrain;
    world.world_size = env.required("DTRAIN_WORLD_SIZE", "needed with DTRAIN_RANK", 1, kMaxRanks);
    world.rank = env.required("DTRAIN_RANK", "needed with DTRAIN_WORLD_SIZE", 0, kMaxRanks);
    world.local_rank = env.integer("DTRAIN_LOCAL_RANK", 0, kMaxRanks).value_or(world.rank);
    world.local_world_size =
        env.integer("DTRAIN_LOCAL_WORLD_SIZE", 1, kMaxRanks).value_or(world.world_size);
    world.node_rank = env.integer("DTRAIN_NODE_RANK", 0, kMaxRanks).value_or(0);
    world.nnodes = env.integer("DTRAIN_NNODES", 1, kMaxRanks).value_or(1);
  } else if (env.text("OMPI_COMM_WORLD_RANK") || env.text("OMPI_COMM_WORLD_SIZE")) {
    world.source = WorldInfo::Source::kOpenMpi;
    world.world_size = env.required("OMPI_COMM_WORLD_SIZE", "set by mpirun", 1, kMaxRanks);
    world.rank = env.required("OMPI_COMM_WORLD_RANK", "set by mpirun", 0, kMaxRanks);
    world.local_rank = env.integer("OMPI_COMM_WORLD_LOCAL_RANK", 0, kMaxRanks).value_or(world.rank);
    world.local_world_size =
        env.integer("OMPI_COMM_WORLD_LOCAL_SIZE", 1, kMaxRanks).value_or(world.world_size);
    // mpirun places ranks by node in blocks of the local size (its default --map-by core).
    if (world.world_size % world.local_world_size == 0) {
      world.nnodes = world.world_size / world.local_world_size;
      world.node_rank = world.rank / world.local_world_size;
    }
  }
  check_below("rank", world.rank, "world size", world.world_size);
  check_below("local rank", world.local_rank, "local world size", world.local_world_size);
  check_below("node rank", world.node_rank, "number of nodes", world.nnodes);
  if (world.local_world_size > world.world_size) {
    throw InvalidArgumentError("local world size " + std::to_string(world.local_world_size) +
                               " exceeds world size " + std::to_string(world.world_size));
  }

  if (auto addr = env.text("DTRAIN_STORE_ADDR")) {
    parse_host_port(*addr, "DTRAIN_STORE_ADDR");
    world.store_addr = *addr;
  } else if (world.world_size > 1 && world.source == WorldInfo::Source::kDtrain) {
    throw InvalidArgumentError("DTRAIN_STORE_ADDR is not set (needed for a world of " +
                               std::to_string(world.world_size) + " ranks)");
  }
  world.run_id = env.text("DTRAIN_RUN_ID").value_or("dtrain");
  world.secret = env.text("DTRAIN_SECRET").value_or("");
  world.listen_host = env.text("DTRAIN_LISTEN_HOST").value_or("");
  if (auto ms = env.integer("DTRAIN_TIMEOUT_MS", 1, int64_t{1} << 30)) {
    world.timeout = std::chrono::milliseconds(*ms);
  }
  return world;
}

WorldInfo world_from_env() {
  return world_from_env(process_env());
}

}  // namespace dtrain
