#include "dtrain/env.h"

#include <charconv>
#include <cstdint>
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

// The variables one launcher describes the world with (null: that launcher sets none).
struct WorldVars {
  WorldInfo::Source source;
  const char* rank;
  const char* world_size;
  const char* local_rank;
  const char* local_world_size;
  const char* node_rank;
  const char* nnodes;
};

constexpr WorldVars kDtrainVars = {
    WorldInfo::Source::kDtrain, "DTRAIN_RANK",      "DTRAIN_WORLD_SIZE", "DTRAIN_LOCAL_RANK",
    "DTRAIN_LOCAL_WORLD_SIZE",  "DTRAIN_NODE_RANK", "DTRAIN_NNODES"};
constexpr WorldVars kTorchrunVars = {
    WorldInfo::Source::kTorchrun, "RANK",       "WORLD_SIZE",      "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",           "GROUP_RANK", "GROUP_WORLD_SIZE"};
constexpr WorldVars kOpenMpiVars = {WorldInfo::Source::kOpenMpi,
                                    "OMPI_COMM_WORLD_RANK",
                                    "OMPI_COMM_WORLD_SIZE",
                                    "OMPI_COMM_WORLD_LOCAL_RANK",
                                    "OMPI_COMM_WORLD_LOCAL_SIZE",
                                    nullptr,
                                    nullptr};

// `value` (the `what`, from the variable `name`) must be below `bound` (from `bound_name`).
void check_below(const char* what, const char* name, int value, const char* bound_what,
                 const char* bound_name, int bound) {
  if (value < bound) return;
  throw InvalidArgumentError(std::string(name) + "=" + std::to_string(value) + ": the " + what +
                             " must be below the " + bound_what + " (" + bound_name + "=" +
                             std::to_string(bound) + ")");
}

// The ranks and sizes, as `vars` name them; InvalidArgumentError naming the variable when one
// is malformed, missing or inconsistent. Unset node variables come from the local world size
// (ranks placed on nodes in blocks of it, as torchrun and mpirun's default mapping do).
void read_ranks(const Reader& env, const WorldVars& vars, WorldInfo& world) {
  world.source = vars.source;
  const std::string rank = vars.rank, size = vars.world_size;
  world.world_size = env.required(size, "needed with " + rank, 1, kMaxRanks);
  world.rank = env.required(rank, "needed with " + size, 0, kMaxRanks);
  world.local_rank = env.integer(vars.local_rank, 0, kMaxRanks).value_or(world.rank);
  world.local_world_size =
      env.integer(vars.local_world_size, 1, kMaxRanks).value_or(world.world_size);
  check_below("rank", vars.rank, world.rank, "world size", vars.world_size, world.world_size);
  check_below("local rank", vars.local_rank, world.local_rank, "local world size",
              vars.local_world_size, world.local_world_size);
  if (world.local_world_size > world.world_size) {
    throw InvalidArgumentError(std::string(vars.local_world_size) + "=" +
                               std::to_string(world.local_world_size) +
                               " exceeds the world size (" + vars.world_size + "=" +
                               std::to_string(world.world_size) + ")");
  }
  std::optional<int> node_rank, nnodes;
  if (vars.node_rank) node_rank = env.integer(vars.node_rank, 0, kMaxRanks);
  if (vars.nnodes) nnodes = env.integer(vars.nnodes, 1, kMaxRanks);
  const bool blocks = world.world_size % world.local_world_size == 0;
  world.nnodes = nnodes.value_or(blocks ? world.world_size / world.local_world_size : 1);
  world.node_rank = node_rank.value_or(blocks ? world.rank / world.local_world_size : 0);
  if (vars.node_rank) {
    check_below("node rank", vars.node_rank, world.node_rank, "number of nodes", vars.nnodes,
                world.nnodes);
  }
}

// 64-bit FNV-1a: a short, stable name for a long string.
uint64_t fnv1a(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

std::string hex(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) text[static_cast<size_t>(i)] = kDigits[value & 15];
  return text;
}

// host:port, with brackets around an IPv6 literal.
std::string join(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// torchrun: rank 0 serves dtrain's store next to PyTorch's (MASTER_PORT + 1; - 1 at the top).
void torchrun_store(const Reader& env, WorldInfo& world) {
  auto master_port = env.integer("MASTER_PORT", 1, 65535);
  auto master_addr = env.text("MASTER_ADDR");
  world.store_on_rank0 = true;
  if (!world.store_addr.empty() || world.world_size == 1) return;
  if (!master_addr) {
    throw InvalidArgumentError(
        "MASTER_ADDR is not set (torchrun sets it; rank 0's store is found from it, or set "
        "DTRAIN_STORE_ADDR)");
  }
  if (!master_port) {
    throw InvalidArgumentError(
        "MASTER_PORT is not set (torchrun sets it; rank 0's store is at MASTER_PORT + 1, or set "
        "DTRAIN_STORE_ADDR)");
  }
  world.store_addr = join(*master_addr, *master_port == 65535 ? 65534 : *master_port + 1);
}

// mpirun: on one node a FileStore in mpirun's private session folder; across nodes rank 0 serves
// the TcpStore at DTRAIN_STORE_ADDR.
void open_mpi_store(const Reader& env, WorldInfo& world) {
  if (!world.store_addr.empty()) {
    world.store_on_rank0 = true;
    return;
  }
  if (world.world_size == 1) return;
  // OMPI_COMM_WORLD_LOCAL_SIZE counts the job's ranks on this node: fewer than all of them
  // means other nodes, whatever the mapping.
  if (world.local_world_size < world.world_size) {
    throw InvalidArgumentError(
        "DTRAIN_STORE_ADDR is not set: a job that mpirun spreads over several nodes "
        "(OMPI_COMM_WORLD_LOCAL_SIZE=" +
        std::to_string(world.local_world_size) +
        " of OMPI_COMM_WORLD_SIZE=" + std::to_string(world.world_size) +
        ") needs it (rank 0's host and a free port, e.g. mpirun -x DTRAIN_STORE_ADDR=...)");
  }
  auto session = env.text("OMPI_MCA_orte_jobfam_session_dir");
  if (!session) {
    throw InvalidArgumentError(
        "OMPI_MCA_orte_jobfam_session_dir is not set (OpenMPI's mpirun sets it; the ranks share "
        "a store folder in it), so set DTRAIN_STORE_ADDR");
  }
  std::string job = env.text("OMPI_MCA_ess_base_jobid").value_or("0");
  parse_int("OMPI_MCA_ess_base_jobid", job, 0, INT64_MAX);  // digits only: part of a file name
  // mpirun's URI holds its listening ports: a later mpirun that reuses a killed one's pid (and
  // so its session folder and job id) still gets a folder of its own.
  world.store_dir = *session + "/dtrain-" + job + "-" +
                    hex(fnv1a(env.text("OMPI_MCA_orte_hnp_uri").value_or(""))).substr(0, 8);
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
  auto described = [&](const WorldVars& vars) {
    return env.text(vars.rank) || env.text(vars.world_size);
  };
  if (described(kDtrainVars)) {
    read_ranks(env, kDtrainVars, world);
  } else if (described(kTorchrunVars)) {
    read_ranks(env, kTorchrunVars, world);
  } else if (described(kOpenMpiVars)) {
    read_ranks(env, kOpenMpiVars, world);
  }

  if (auto addr = env.text("DTRAIN_STORE_ADDR")) {
    parse_host_port(*addr, "DTRAIN_STORE_ADDR");
    world.store_addr = *addr;
  }
  switch (world.source) {
    case WorldInfo::Source::kDtrain:
      if (world.store_addr.empty() && world.world_size > 1) {
        throw InvalidArgumentError("DTRAIN_STORE_ADDR is not set (needed for a world of " +
                                   std::to_string(world.world_size) + " ranks)");
      }
      break;
    case WorldInfo::Source::kTorchrun:
      torchrun_store(env, world);
      break;
    case WorldInfo::Source::kOpenMpi:
      open_mpi_store(env, world);
      break;
    case WorldInfo::Source::kNone:
      break;
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
