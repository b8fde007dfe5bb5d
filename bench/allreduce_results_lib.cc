#include "allreduce_results.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <ostream>
#include <set>
#include <tuple>

#include "dtrain/error.h"

namespace dtrain::bench {

namespace {

std::string fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
}

std::string format_gbps(double gbps) {
  return fixed(gbps, gbps < 1 ? 3 : 2);
}

std::string label(const std::string& series) {
  if (series == "gloo:ring") return "gloo ring";
  if (series == "gloo:hd") return "gloo hd";
  if (series == "gloo:fn") return "gloo::allreduce";
  std::string text = series;
  std::replace(text.begin(), text.end(), ':', ' ');
  return text;
}

std::string short_algorithm(const std::string& algorithm) {
  if (algorithm == "recursive_doubling") return "rd";
  if (algorithm == "halving_doubling") return "hd";
  return algorithm;
}

}  // namespace

AllreduceResult parse_result_line(const std::string& line) {
  try {
    nlohmann::json j = nlohmann::json::parse(line);
    AllreduceResult r;
    std::string system = j.at("system").get<std::string>();
    r.series = system == "mpi" ? "mpi" : system + ":" + j.at("variant").get<std::string>();
    r.world = j.at("world").get<int>();
    r.bytes = j.at("bytes").get<size_t>();
    r.iters = j.at("iters").get<int>();
    r.median_s = j.at("median_s").get<double>();
    r.min_s = j.at("min_s").get<double>();
    r.p90_s = j.at("p90_s").get<double>();
    r.algorithm = j.at("algorithm").get<std::string>();
    r.ok = j.at("check").get<std::string>() == "ok";
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw CorruptError("bad peer result line '" + line + "': " + e.what());
  }
}

std::vector<AllreduceResult> pick_rounds(const std::vector<AllreduceResult>& rounds, bool best) {
  std::vector<std::vector<AllreduceResult>> groups;
  std::map<std::tuple<std::string, int, size_t>, size_t> index;
  for (const AllreduceResult& r : rounds) {
    auto [it, fresh] = index.try_emplace({r.series, r.world, r.bytes}, groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(r);
  }
  std::vector<AllreduceResult> picked;
  for (auto& g : groups) {
    bool ok = std::all_of(g.begin(), g.end(), [](const AllreduceResult& r) { return r.ok; });
    std::sort(g.begin(), g.end(), [](const AllreduceResult& a, const AllreduceResult& b) {
      return a.median_s < b.median_s;
    });
    picked.push_back(best ? g.front() : g[(g.size() - 1) / 2]);
    picked.back().ok = ok;
  }
  return picked;
}

nlohmann::json to_json(const AllreduceResult& r) {
  return {{"series", r.series},
          {"world", r.world},
          {"bytes", r.bytes},
          {"iters", r.iters},
          {"median_s", r.median_s},
          {"min_s", r.min_s},
          {"p90_s", r.p90_s},
          {"algbw_gbps", r.algbw_gbps()},
          {"busbw_gbps", r.busbw_gbps()},
          {"algorithm", r.algorithm},
          {"check_ok", r.ok}};
}

std::string format_size(size_t bytes) {
  if (bytes >= (size_t{1} << 20) && bytes % (size_t{1} << 20) == 0) {
    return std::to_string(bytes >> 20) + " MiB";
  }
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " B";
}

std::string format_seconds(double seconds) {
  if (seconds < 1e-3) return fixed(seconds * 1e6, 1) + " us";
  if (seconds < 1) return fixed(seconds * 1e3, 2) + " ms";
  return fixed(seconds, 2) + " s";
}

void write_world_table(std::ostream& out, int world, const std::string& primary,
                       const std::vector<AllreduceResult>& results) {
  // (series, bytes) -> result, for this world only.
  std::map<std::pair<std::string, size_t>, const AllreduceResult*> by_key;
  std::set<size_t> sizes;
  std::vector<std::string> series;  // in order of first appearance
  for (const AllreduceResult& r : results) {
    if (r.world != world) continue;
    by_key[{r.series, r.bytes}] = &r;
    sizes.insert(r.bytes);
    if (std::find(series.begin(), series.end(), r.series) == series.end())
      series.push_back(r.series);
  }
  if (sizes.empty()) return;
  std::vector<std::string> gloo_series;
  for (const std::string& s : series) {
    if (s.rfind("gloo:", 0) == 0) gloo_series.push_back(s);
  }
  const bool have_mpi = std::find(series.begin(), series.end(), "mpi") != series.end();
  // A ratio column against each of these Gloo variants that ran, besides "gloo best".
  std::vector<std::string> gloo_ratio_series;
  for (const char* s : {"gloo:ring", "gloo:fn"}) {
    if (std::find(series.begin(), series.end(), s) != series.end()) gloo_ratio_series.push_back(s);
  }
  // ... and against dtrain's other variants (another transport) that ran.
  for (const std::string& s : series) {
    if (s != primary && s.rfind("dtrain:", 0) == 0) gloo_ratio_series.push_back(s);
  }

  out << "| size | " << label(primary) << " alg | lat | algbw GB/s | busbw GB/s";
  std::string rule = "|---|---|---:|---:|---:";
  for (const std::string& s : series) {
    if (s == primary) continue;
    out << " | " << label(s) << " lat | " << label(s) << " busbw";
    rule += "|---:|---:";
  }
  for (const std::string& s : gloo_ratio_series) out << " | ÷ " << label(s), rule += "|---:";
  if (!gloo_series.empty()) out << " | ÷ gloo best", rule += "|---:";
  if (have_mpi) out << " | ÷ mpi", rule += "|---:";
  out << " |\n" << rule << "|\n";

  auto find = [&](const std::string& s, size_t bytes) -> const AllreduceResult* {
    auto it = by_key.find({s, bytes});
    return it == by_key.end() ? nullptr : it->second;
  };
  auto ratio = [](const AllreduceResult* a, double peer_busbw) -> std::string {
    if (a == nullptr || peer_busbw <= 0) return "–";
    return fixed(a->busbw_gbps() / peer_busbw, 2);
  };

  for (size_t bytes : sizes) {
    const AllreduceResult* p = find(primary, bytes);
    out << "| " << format_size(bytes);
    if (p) {
      out << " | " << short_algorithm(p->algorithm) << (p->ok ? "" : " (WRONG)") << " | "
          << format_seconds(p->median_s) << " | " << format_gbps(p->algbw_gbps()) << " | "
          << format_gbps(p->busbw_gbps());
    } else {
      out << " | – | – | – | –";
    }
    for (const std::string& s : series) {
      if (s == primary) continue;
      const AllreduceResult* r = find(s, bytes);
      if (r) {
        out << " | " << format_seconds(r->median_s) << (r->ok ? "" : " (WRONG)") << " | "
            << format_gbps(r->busbw_gbps());
      } else {
        out << " | – | –";
      }
    }
    for (const std::string& s : gloo_ratio_series) {
      const AllreduceResult* g = find(s, bytes);
      out << " | " << ratio(p, g ? g->busbw_gbps() : 0);
    }
    if (!gloo_series.empty()) {
      double best = 0;
      for (const std::string& s : gloo_series) {
        if (const AllreduceResult* g = find(s, bytes)) best = std::max(best, g->busbw_gbps());
      }
      out << " | " << ratio(p, best);
    }
    if (have_mpi) {
      const AllreduceResult* m = find("mpi", bytes);
      out << " | " << ratio(p, m ? m->busbw_gbps() : 0);
    }
    out << " |\n";
  }
}

}  // namespace dtrain::bench
