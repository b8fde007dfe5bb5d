#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <type_traits>

#include "allreduce_bench.h"
#include "allreduce_results.h"
#include "dtrain/error.h"
#include "peer_common.h"
#include "peer_process.h"

namespace dtrain::bench {

namespace {

// glibc's malloc tunables, the same for every peer process (MACHINE.md: fresh pages cost ~12 us
// per 4 KiB page here, and glibc maps every block over 32 MiB afresh and returns it on free).
constexpr const char* kNoMmapThreshold = "4294967295";

std::vector<PlannedSize> make_plan(const AllreduceBenchOptions& o) {
  std::vector<PlannedSize> plan;
  for (size_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= 2) {
    PlannedSize s;
    s.bytes = bytes;
    size_t budget_iters = o.iter_budget_bytes / bytes;
    s.iters = static_cast<int>(std::clamp<size_t>(budget_iters, o.min_iters, o.iters));
    s.iters = std::min(s.iters, o.iters);
    s.warmup = std::min(o.warmup, std::max(2, s.iters / 4));
    plan.push_back(s);
  }
  return plan;
}

std::string find_peer(const std::string& name) {
  const std::string dir = executable_dir();
  for (const std::string& candidate : {dir + "/" + name, dir + "/../" + name}) {
    if (std::filesystem::exists(candidate)) {
      return std::filesystem::weakly_canonical(candidate).string();
    }
  }
  throw NotFoundError("peer executable " + name + " not found next to " + dir +
                      " (build the bench targets)");
}

// One peer run: the lines it printed, parsed. A failed run (the peer's exit status, a timeout)
// is retried once, since Gloo's TCP connection set-up occasionally fails on loopback.
std::vector<AllreduceResult> run_peer(const std::string& what, const std::vector<std::string>& argv,
                                      const std::map<std::string, std::string>& env, int timeout_s,
                                      bool& failed) {
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto start = std::chrono::steady_clock::now();
    ProcessResult run = run_process(argv, env, std::chrono::seconds(timeout_s + 30));
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::vector<AllreduceResult> results;
    std::stringstream lines(run.out);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line[0] == '{') results.push_back(parse_result_line(line));
    }
    if (run.exit_code == 0 && !run.timed_out) {
      std::cerr << "  " << what << ": " << results.size() << " sizes in " << took.count() << " s\n";
      return results;
    }
    std::cerr << "  " << what << ": attempt " << attempt << " failed ("
              << (run.timed_out ? "timed out" : "exit " + std::to_string(run.exit_code)) << ")\n";
    if (attempt == 2) {
      failed = true;
      return results;  // what it measured before failing, if anything
    }
  }
  return {};
}

}  // namespace

size_t parse_bytes(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0) throw InvalidArgumentError("bad size '" + text + "' (e.g. 4096, 4KiB, 64MiB)");
  size_t value = std::stoull(text.substr(0, digits));
  std::string unit = text.substr(digits);
  std::string lower;
  for (char c : unit) {
    if (c != ' ') lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  static const std::map<std::string, size_t> kUnits = {
      {"", 1},          {"b", 1},        {"k", 1 << 10},  {"kb", 1 << 10},
      {"kib", 1 << 10}, {"m", 1 << 20},  {"mb", 1 << 20}, {"mib", 1 << 20},
      {"g", 1 << 30},   {"gb", 1 << 30}, {"gib", 1 << 30}};
  auto it = kUnits.find(lower);
  if (it == kUnits.end()) throw InvalidArgumentError("bad size unit in '" + text + "'");
  return value * it->second;
}

namespace {

// "a,b,c" from strings or numbers.
template <typename Items>
std::string join(const Items& items) {
  std::string text;
  for (const auto& item : items) {
    if (!text.empty()) text += ',';
    if constexpr (std::is_same_v<std::decay_t<decltype(item)>, std::string>) {
      text += item;
    } else {
      text += std::to_string(item);
    }
  }
  return text;
}

}  // namespace

std::string canonical_flags(const AllreduceBenchOptions& o) {
  auto size = [](size_t bytes) {
    std::string text = format_size(bytes);
    text.erase(std::remove(text.begin(), text.end(), ' '), text.end());
    return text;
  };
  std::string flags = "--world " + join(o.worlds) + " --min " + size(o.min_bytes) + " --max " +
                      size(o.max_bytes) + " --iters " + std::to_string(o.iters) + " --warmup " +
                      std::to_string(o.warmup) + " --min-iters " + std::to_string(o.min_iters) +
                      " --iter-budget " + size(o.iter_budget_bytes) + " --peers " + join(o.peers) +
                      " --dtrain-algos " + join(o.dtrain_algos) + " --gloo-algos " +
                      join(o.gloo_algos) + " --dtrain-transports " + join(o.dtrain_transports) +
                      " --store " + o.dtrain_store;
  if (!o.dtrain_verify) flags += " --no-verify";
  if (o.dtrain_post_ahead) flags += " --dtrain-post-ahead";
  if (o.bind_cpu) flags += " --bind-to cpu";
  if (!o.tune_malloc) flags += " --no-malloc-tune";
  if (o.rounds != 1) flags += " --rounds " + std::to_string(o.rounds);
  if (o.best_round) flags += " --best-round";
  if (o.gap_us != 0) flags += " --gap-us " + std::to_string(o.gap_us);
  if (!o.json_path.empty()) flags += " --json " + o.json_path;
  return flags;
}

void add_allreduce_bench_flags(CLI::App& app, AllreduceBenchOptions& o) {
  app.add_option("--world", o.worlds, "world sizes, e.g. 2,4")->delimiter(',');
  app.add_option_function<std::string>(
      "--min", [&o](const std::string& v) { o.min_bytes = parse_bytes(v); },
      "smallest message (default 4KiB)");
  app.add_option_function<std::string>(
      "--max", [&o](const std::string& v) { o.max_bytes = parse_bytes(v); },
      "largest message (default 64MiB); sizes double from --min");
  app.add_option("--iters", o.iters, "timed iterations per size (fewer at large sizes)");
  app.add_option("--warmup", o.warmup, "untimed iterations per size");
  app.add_option("--min-iters", o.min_iters, "timed iterations at the largest sizes, at least");
  app.add_option_function<std::string>(
      "--iter-budget", [&o](const std::string& v) { o.iter_budget_bytes = parse_bytes(v); },
      "bytes per size and system across timed iterations (default 512MiB)");
  app.add_option("--peers", o.peers, "peers to compare with: gloo,mpi (or none)")->delimiter(',');
  app.add_option("--dtrain-algos", o.dtrain_algos,
                 "dtrain allreduce algorithms: auto,ring,rd,direct,hd (the first is compared)")
      ->delimiter(',');
  app.add_option("--gloo-algos", o.gloo_algos,
                 "Gloo allreduces: ring,hd (algorithm classes), fn (the function gloo::allreduce)")
      ->delimiter(',');
  app.add_option("--dtrain-transports", o.dtrain_transports,
                 "dtrain's transports: tcp (its own, authenticated), gloo (the first is compared)")
      ->delimiter(',');
  app.add_flag("!--no-verify", o.dtrain_verify,
               "turn off dtrain's per-collective descriptor check");
  app.add_flag("--dtrain-post-ahead", o.dtrain_post_ahead,
               "dtrain posts the next collective's descriptor receives ahead (eager sends)");
  app.add_option("--store", o.dtrain_store, "dtrain rendezvous store: file or tcp");
  app.add_option_function<std::string>(
      "--bind-to",
      [&o](const std::string& v) {
        if (v != "none" && v != "cpu") throw InvalidArgumentError("--bind-to takes none or cpu");
        o.bind_cpu = v == "cpu";
      },
      "none, or cpu: every system's rank r on one CPU, round-robin (mpirun --bind-to core)");
  app.add_flag("!--no-malloc-tune", o.tune_malloc,
               "do not set MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ for the peers");
  app.add_option("--rounds", o.rounds,
                 "repeat every system this often, taking turns; report the median round's median");
  app.add_flag("--best-round", o.best_round, "report the best round's median instead");
  app.add_option("--json", o.json_path, "also write all results to this JSON file");
  app.add_option("--timeout", o.timeout_s, "seconds one peer run may take");
  app.add_option("--gap-us", o.gap_us,
                 "busy computation (microseconds) on every rank after each barrier, untimed");
}

namespace {

void validate(const AllreduceBenchOptions& o) {
  if (o.min_bytes < 4 || o.min_bytes % 4 != 0 || o.max_bytes < o.min_bytes) {
    throw InvalidArgumentError("--min/--max: need 4 <= min <= max, multiples of 4 bytes");
  }
  if (o.max_bytes > (size_t{1} << 30)) throw InvalidArgumentError("--max: at most 1GiB");
  if (o.rounds < 1) throw InvalidArgumentError("--rounds >= 1");
  if (o.iters < 1 || o.min_iters < 1 || o.warmup < 0) {
    throw InvalidArgumentError("--iters/--min-iters >= 1, --warmup >= 0");
  }
  if (o.worlds.empty()) throw InvalidArgumentError("--world: at least one size");
  if (o.gap_us < 0 || o.gap_us > 10'000'000) throw InvalidArgumentError("--gap-us: 0 to 10000000");
  for (int w : o.worlds) {
    if (w < 2 || w > 64) throw InvalidArgumentError("--world: sizes from 2 to 64");
  }
  if (o.dtrain_algos.empty()) throw InvalidArgumentError("--dtrain-algos: at least one");
  for (const std::string& a : o.dtrain_algos) {
    if (a != "auto" && a != "ring" && a != "rd" && a != "direct" && a != "hd") {
      throw InvalidArgumentError("--dtrain-algos takes auto, ring, rd, direct, hd");
    }
  }
  if (o.gloo_algos.empty()) throw InvalidArgumentError("--gloo-algos: at least one");
  for (const std::string& a : o.gloo_algos) {
    if (a != "ring" && a != "hd" && a != "fn") {
      throw InvalidArgumentError("--gloo-algos takes ring, hd, fn");
    }
  }
  if (o.dtrain_transports.empty()) throw InvalidArgumentError("--dtrain-transports: at least one");
  for (const std::string& t : o.dtrain_transports) {
    if (t != "tcp" && t != "gloo")
      throw InvalidArgumentError("--dtrain-transports takes tcp, gloo");
  }
  if (o.dtrain_store != "file" && o.dtrain_store != "tcp") {
    throw InvalidArgumentError("--store takes file or tcp");
  }
  for (const std::string& p : o.peers) {
    if (p != "gloo" && p != "mpi" && p != "none") {
      throw InvalidArgumentError("--peers takes gloo, mpi, none");
    }
  }
}

// The command line of each system for one world size ({} = not run), and notes for the report.
struct PeerCommands {
  std::string dtrain_peer, gloo_peer, mpi_peer, mpirun;
  std::vector<std::string> notes;

  static PeerCommands resolve(const AllreduceBenchOptions& o) {
    auto wants = [&](const char* name) {
      return std::find(o.peers.begin(), o.peers.end(), name) != o.peers.end();
    };
    PeerCommands c;
    c.dtrain_peer = find_peer("dtrain_allreduce_peer");
    if (wants("gloo")) {
      try {
        c.gloo_peer = find_peer("gloo_allreduce_peer");
      } catch (const NotFoundError&) {
        c.notes.push_back(
            "Gloo peer skipped: gloo_allreduce_peer was not built (no Gloo found, or "
            "-DDTRAIN_WITH_GLOO=OFF).");
        std::cerr << "note: " << c.notes.back() << "\n";
      }
    }
    if (wants("mpi")) {
      c.mpirun = find_on_path("mpirun");
      try {
        c.mpi_peer = find_peer("mpi_allreduce_peer");
      } catch (const NotFoundError&) {
        c.mpi_peer.clear();
      }
      if (c.mpirun.empty()) {
        c.notes.push_back("MPI peer skipped: mpirun is not on PATH.");
      } else if (c.mpi_peer.empty()) {
        c.notes.push_back("MPI peer skipped: mpi_allreduce_peer was not built (no MPI found).");
      }
      if (c.mpirun.empty() || c.mpi_peer.empty()) {
        c.mpirun.clear();
        c.mpi_peer.clear();
        std::cerr << "note: " << c.notes.back() << "\n";
      }
    }
    return c;
  }

  // (label, argv) per system, in the order they run.
  std::vector<std::pair<std::string, std::vector<std::string>>> for_world(
      const AllreduceBenchOptions& o, int world, const std::string& plan) const {
    const std::string n = std::to_string(world);
    const std::string timeout = std::to_string(o.timeout_s);
    const std::string gap = std::to_string(o.gap_us);
    const std::string bind = o.bind_cpu ? "cpu" : "none";
    const std::string algos = join(o.dtrain_algos);
    std::vector<std::pair<std::string, std::vector<std::string>>> runs;
    for (const std::string& transport : o.dtrain_transports) {
      runs.push_back({"dtrain (" + transport + " transport)",
                      {dtrain_peer,
                       "--world",
                       n,
                       "--plan",
                       plan,
                       "--algos",
                       algos,
                       "--verify",
                       o.dtrain_verify ? "1" : "0",
                       "--post-ahead",
                       o.dtrain_post_ahead ? "1" : "0",
                       "--transport",
                       transport,
                       "--store",
                       o.dtrain_store,
                       "--timeout-s",
                       timeout,
                       "--gap-us",
                       gap,
                       "--bind-to",
                       bind}});
    }
    if (!gloo_peer.empty()) {
      runs.push_back({"gloo",
                      {gloo_peer, "--world", n, "--plan", plan, "--algos", join(o.gloo_algos),
                       "--timeout-s", timeout, "--gap-us", gap, "--bind-to", bind}});
    }
    if (!mpi_peer.empty()) {
      // Bound like the other systems' ranks: one CPU each, round-robin, or not at all.
      runs.push_back({"mpi",
                      {mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to",
                       o.bind_cpu ? "core:overload-allowed" : "none", "-np", n, mpi_peer, "--world",
                       n, "--plan", plan, "--gap-us", gap}});
    }
    return runs;
  }
};

void write_report(std::ostream& out, const AllreduceBenchOptions& o,
                  const std::string& command_line, const std::vector<std::string>& notes,
                  const std::vector<AllreduceResult>& results) {
  const std::string primary = "dtrain:" + o.dtrain_algos.front() +
                              (o.dtrain_verify ? "" : ",noverify") +
                              (o.dtrain_post_ahead ? ",post-ahead" : "") +
                              (o.dtrain_transports.front() == "gloo" ? ",gloo-transport" : "");
  out << "Command: " << command_line << "\n"
      << "Allreduce, float32 sum, loopback; median over iterations of the slowest rank's time "
         "(barrier before each iteration"
      << (o.gap_us > 0 ? ", then " + std::to_string(o.gap_us) + " us of computation on every rank"
                       : "")
      << ")" << (o.bind_cpu ? "; every rank bound to one CPU, round-robin" : "")
      << (o.rounds > 1 ? std::string(o.best_round ? "; best" : "; median") + " of " +
                             std::to_string(o.rounds) + " rounds' medians"
                       : "")
      << ".\n"
      << "busbw = 2(n-1)/n * bytes / time; GB/s = 1e9 bytes/s; ÷ = dtrain busbw / peer busbw.\n"
      << "malloc tunables for all peers: "
      << (o.tune_malloc ? "MALLOC_MMAP_THRESHOLD_=MALLOC_TRIM_THRESHOLD_=4294967295" : "default")
      << "\n";
  for (const std::string& note : notes) out << "Note: " << note << "\n";
  for (int world : o.worlds) {
    out << "\n### world size " << world << "\n\n";
    write_world_table(out, world, primary, results);
  }
}

}  // namespace

int run_allreduce_bench(const AllreduceBenchOptions& o, const std::string& command_line,
                        std::ostream& out) {
  validate(o);
  const std::string plan = format_plan(make_plan(o));
  const PeerCommands peers = PeerCommands::resolve(o);
  std::map<std::string, std::string> env;
  if (o.tune_malloc) {
    env["MALLOC_MMAP_THRESHOLD_"] = kNoMmapThreshold;
    env["MALLOC_TRIM_THRESHOLD_"] = kNoMmapThreshold;
  }

  std::vector<AllreduceResult> all_rounds;
  bool failed = false;
  for (int round = 1; round <= o.rounds; ++round) {
    for (int world : o.worlds) {
      std::cerr << "round " << round << ", world " << world << ":\n";
      for (const auto& [what, argv] : peers.for_world(o, world, plan)) {
        std::vector<AllreduceResult> got = run_peer(what, argv, env, o.timeout_s, failed);
        all_rounds.insert(all_rounds.end(), got.begin(), got.end());
      }
    }
  }
  const std::vector<AllreduceResult> results = pick_rounds(all_rounds, o.best_round);
  write_report(out, o, command_line, peers.notes, results);
  for (const AllreduceResult& r : results) {
    if (!r.ok) {
      failed = true;
      out << "WRONG RESULT: " << r.series << " world " << r.world << " " << format_size(r.bytes)
          << "\n";
    }
  }

  if (!o.json_path.empty()) {
    nlohmann::json doc = {{"command", command_line},
                          {"plan", plan},
                          {"malloc_tuned", o.tune_malloc},
                          {"notes", peers.notes},
                          {"rounds", o.rounds},
                          {"gap_us", o.gap_us},
                          {"results", nlohmann::json::array()},
                          {"all_rounds", nlohmann::json::array()}};
    for (const AllreduceResult& r : results) doc["results"].push_back(to_json(r));
    for (const AllreduceResult& r : all_rounds) doc["all_rounds"].push_back(to_json(r));
    std::ofstream file(o.json_path);
    file << doc.dump(2) << "\n";
    if (!file) throw IoError("cannot write " + o.json_path);
  }
  return failed ? 1 : 0;
}

}  // namespace dtrain::bench
