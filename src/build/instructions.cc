// The instructions that change only the image config (ARG, ENV, LABEL,
// MAINTAINER, USER, EXPOSE, VOLUME, STOPSIGNAL, SHELL, CMD, ENTRYPOINT,
// HEALTHCHECK, ONBUILD), and WORKDIR. History entries are worded as
// BuildKit words them, so `history` reads the same for both.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "build/build_run.h"
#include "build/paths.h"

namespace ocib::build {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Go's %q of a string, as BuildKit's history prints CMD and ENTRYPOINT.
std::string GoQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char b[8];
          std::snprintf(b, sizeof b, "\\x%02x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// ["a" "b"]: a Go string slice printed with %q.
std::string GoQuotedList(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + GoQuote(v[i]);
  return s + "]";
}

// A Go time.Duration as its String method prints it: "0s", "100ms",
// "5s", "1m30s", "1h0m0s".
std::string GoDuration(int64_t ns) {
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  uint64_t u = ns < 0 ? static_cast<uint64_t>(-ns) : static_cast<uint64_t>(ns);
  auto frac = [](uint64_t whole, uint64_t part, int digits) {
    std::string f = std::to_string(part);
    f = std::string(digits - f.size(), '0') + f;
    while (!f.empty() && f.back() == '0') f.pop_back();
    return std::to_string(whole) + (f.empty() ? "" : "." + f);
  };
  if (u < 1000) return sign + std::to_string(u) + "ns";
  if (u < 1000000) return sign + frac(u / 1000, u % 1000, 3) + "\u00b5s";
  if (u < 1000000000) return sign + frac(u / 1000000, u % 1000000, 6) + "ms";
  uint64_t secs = u / 1000000000, rest = u % 1000000000;
  std::string s = frac(secs % 60, rest, 9) + "s";
  uint64_t mins = secs / 60;
  if (mins == 0) return sign + s;
  s = std::to_string(mins % 60) + "m" + s;
  if (mins / 60 == 0) return sign + s;
  return sign + std::to_string(mins / 60) + "h" + s;
}

// An integer printed with Go's %q: a quoted character literal.
std::string GoQuoteRune(int v) {
  if (v >= 0x20 && v < 0x7f) {
    if (v == '\'' || v == '\\')
      return std::string("'\\") + static_cast<char>(v) + "'";
    return std::string("'") + static_cast<char>(v) + "'";
  }
  char b[16];
  if (v >= 0 && v < 0x100)
    std::snprintf(b, sizeof b, "'\\x%02x'", v);
  else
    std::snprintf(b, sizeof b, "'\\u%04x'", v & 0xffff);
  return b;
}

// [a b]: a Go string slice printed with %v.
std::string GoList(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + v[i];
  return s + "]";
}

}  // namespace

Status BuildRun::Arg(Stage& st, const Instruction& ins) {
  ASSIGN_OR_RETURN(auto kvs,
                   ExpandKeyValues(ins, ExpansionEnv(st), df_.escape));
  std::string desc;
  for (auto& kv : kvs) {
    {
      MutexLock l(&args_mu_);
      used_args_.insert(kv.key);
    }
    st.declared_args.push_back(kv.key);
    auto it = o_.build_args.find(kv.key);
    if (it != o_.build_args.end())
      st.args[kv.key] = it->second;
    else if (kv.has_value)
      st.args[kv.key] = kv.value;
    else if (globals_.count(kv.key))
      st.args[kv.key] = globals_.at(kv.key);
    else
      st.args.erase(kv.key);
    desc += (desc.empty() ? "" : " ") + kv.key +
            (kv.has_value ? "=" + kv.value : "");
  }
  History(st, "ARG " + desc, true);
  return Status::Ok();
}

Status BuildRun::EnvStep(Stage& st, const Instruction& ins) {
  ASSIGN_OR_RETURN(auto kvs,
                   ExpandKeyValues(ins, ExpansionEnv(st), df_.escape));
  std::string desc;
  for (auto& kv : kvs) {
    st.image.config.SetEnv(kv.key, kv.value);
    desc += (desc.empty() ? "" : " ") + kv.key + "=" + kv.value;
  }
  History(st, "ENV " + desc, true);
  return Status::Ok();
}

Status BuildRun::Label(Stage& st, const Instruction& ins) {
  ASSIGN_OR_RETURN(auto kvs,
                   ExpandKeyValues(ins, ExpansionEnv(st), df_.escape));
  std::string desc;
  for (auto& kv : kvs) {
    st.image.config.labels[kv.key] = kv.value;
    desc += (desc.empty() ? "" : " ") + kv.key + "=" + kv.value;
  }
  History(st, "LABEL " + desc, true);
  return Status::Ok();
}

Status BuildRun::Maintainer(Stage& st, const Instruction& ins) {
  // The image's author, as docker and BuildKit record it (no label).
  st.image.author = ins.rest;
  History(st, "MAINTAINER " + ins.rest, true);
  return Status::Ok();
}

// As BuildKit: the directory is made at once (mkdir -p as the current
// USER) in a layer of its own, for every WORKDIR but "/".
Status BuildRun::Workdir(Stage& st, const Instruction& ins) {
  ContainerConfig& cc = st.image.config;
  ASSIGN_OR_RETURN(std::string w,
                   ExpandWord(ins.args[0], ExpansionEnv(st), df_.escape));
  std::string abs = JoinAbs(cc.working_dir, w), clean;
  CleanRelative(abs, &clean);
  cc.working_dir = "/" + clean;
  std::string created_by = "WORKDIR " + cc.working_dir;
  if (clean.empty()) {
    History(st, created_by, true);
    return Status::Ok();
  }
  std::string key =
      ChainKey(st.key, "workdir " + cc.working_dir + "\nuser " + cc.user);
  st.key = key;
  if (auto hit = CacheGet(st, key)) {
    AddLayer(st, hit->first, hit->second, created_by, true);
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(auto lowers,
                   builder_->LayerDirs(st.layers, st.image.diff_ids));
  ProcessSpec who;
  RETURN_IF_ERROR(ResolveOwner(cc.user, lowers, &who));
  std::string stage = scratch_ + "/workdir-" + RandomHex();
  fs::create_directories(stage);
  RETURN_IF_ERROR(StageParents(stage, lowers, clean, who.uid, who.gid));
  ASSIGN_OR_RETURN(LayerInfo l, LayerFromTree(stage, false));
  KeepAsLayerDir(stage, l.diff_id);
  RETURN_IF_ERROR(CachePut(key, l));
  AddLayer(st, LayerDescriptor{l.media_type, l.digest, l.size}, l.diff_id,
           created_by, false);
  return Status::Ok();
}

Status BuildRun::User(Stage& st, const Instruction& ins) {
  ASSIGN_OR_RETURN(st.image.config.user,
                   ExpandWord(ins.args[0], ExpansionEnv(st), df_.escape));
  History(st, "USER " + st.image.config.user, true);
  return Status::Ok();
}

Status BuildRun::Expose(Stage& st, const Instruction& ins) {
  ContainerConfig& cc = st.image.config;
  ASSIGN_OR_RETURN(auto ports,
                   ExpandWords(ins.rest, ExpansionEnv(st), df_.escape));
  std::set<std::string> added;
  for (auto p : ports) {
    // PORT, PORT/PROTO, or a range FIRST-LAST[/PROTO]: one entry per port,
    // as docker records them.
    std::string proto = "tcp";
    if (size_t slash = p.find('/'); slash != std::string::npos) {
      proto = p.substr(slash + 1);
      p = p.substr(0, slash);
    }
    for (char& c : proto)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (proto != "tcp" && proto != "udp" && proto != "sctp")
      return InvalidArgument("invalid protocol in EXPOSE " + p + "/" + proto);
    size_t dash = p.find('-');
    std::string a = p.substr(0, dash),
                b = dash == std::string::npos ? a : p.substr(dash + 1);
    auto port_num = [](const std::string& v) -> int {
      if (v.empty() || v.size() > 5 ||
          !std::all_of(v.begin(), v.end(), ::isdigit))
        return -1;
      int n = std::stoi(v);
      return n <= 65535 ? n : -1;
    };
    int first = port_num(a), last = port_num(b);
    if (first < 0 || last < first) return InvalidArgument("invalid port " + p);
    for (int n = first; n <= last; ++n) {
      cc.exposed_ports.insert(std::to_string(n) + "/" + proto);
      added.insert(std::to_string(n) + "/" + proto);
    }
  }
  // BuildKit prints the ports as a Go map: keys sorted as strings.
  std::string desc;
  for (const auto& p : added) desc += (desc.empty() ? "" : " ") + p + ":{}";
  History(st, "EXPOSE map[" + desc + "]", true);
  return Status::Ok();
}

Status BuildRun::Volume(Stage& st, const Instruction& ins) {
  std::vector<std::string> vols = ins.args;
  if (!ins.exec_form) {
    ASSIGN_OR_RETURN(vols, ExpandWords(ins.rest, ExpansionEnv(st), df_.escape));
  }
  for (const auto& v : vols) {
    if (v.empty()) return InvalidArgument("VOLUME paths can not be empty");
    st.image.config.volumes.insert(v);
  }
  History(st, "VOLUME " + GoList(vols), true);
  return Status::Ok();
}

Status BuildRun::StopSignal(Stage& st, const Instruction& ins) {
  ASSIGN_OR_RETURN(st.image.config.stop_signal,
                   ExpandWord(ins.args[0], ExpansionEnv(st), df_.escape));
  History(st, "STOPSIGNAL " + st.image.config.stop_signal, true);
  return Status::Ok();
}

Status BuildRun::Shell(Stage& st, const Instruction& ins) {
  st.shell = ins.args;
  st.image.config.shell = ins.args;
  History(st, "SHELL " + GoList(ins.args), true);
  return Status::Ok();
}

Status BuildRun::CmdOrEntrypoint(Stage& st, const Instruction& ins) {
  ContainerConfig& cc = st.image.config;
  std::vector<std::string> cmd = ins.args;
  if (!ins.exec_form) {
    cmd = st.shell;
    cmd.push_back(ins.rest);
  }
  if (ins.kind == Keyword::kCmd) {
    cc.cmd = cmd;
    st.cmd_set = true;
  } else {
    cc.entrypoint = cmd;
    if (!st.cmd_set)
      cc.cmd.reset();  // ENTRYPOINT resets a CMD inherited from the base
  }
  History(st, ins.keyword + " " + GoQuotedList(cmd), true);
  return Status::Ok();
}

Status BuildRun::Healthcheck(Stage& st, const Instruction& ins) {
  ContainerConfig& cc = st.image.config;
  if (ins.subcommand == "NONE") {
    cc.healthcheck = ocib::build::Healthcheck{{"NONE"}};
  } else {
    ocib::build::Healthcheck h;
    if (ins.exec_form) {
      h.test = {"CMD"};
      h.test.insert(h.test.end(), ins.args.begin(), ins.args.end());
    } else {
      h.test = {"CMD-SHELL", ins.rest};
    }
    for (const auto& [k, v] : ins.flags) {
      if (k == "retries") {
        h.retries = std::atoi(v.c_str());
        continue;
      }
      ASSIGN_OR_RETURN(int64_t ns, ParseDuration(v));
      if (k == "interval")
        h.interval_ns = ns;
      else if (k == "timeout")
        h.timeout_ns = ns;
      else if (k == "start-period")
        h.start_period_ns = ns;
      else if (k == "start-interval")
        h.start_interval_ns = ns;
    }
    cc.healthcheck = h;
  }
  // BuildKit 0.8 prints its healthcheck struct with %q.
  const ocib::build::Healthcheck& h = *cc.healthcheck;
  History(st,
          "HEALTHCHECK &{" + GoQuotedList(h.test) + " " +
              GoQuote(GoDuration(h.interval_ns)) + " " +
              GoQuote(GoDuration(h.timeout_ns)) + " " +
              GoQuote(GoDuration(h.start_period_ns)) + " " +
              GoQuoteRune(h.retries) + "}",
          true);
  return Status::Ok();
}

Status BuildRun::Onbuild(Stage& st, const Instruction& ins) {
  // Recorded in the config only: BuildKit adds no history entry for it.
  st.image.config.onbuild.push_back(ins.args[0]);
  return Status::Ok();
}

// A Go duration: one or more NUMBER UNIT pairs ("1m30s", "1.5h", "100ms").
Result<int64_t> BuildRun::ParseDuration(const std::string& v) {
  static const std::regex whole(
      "^([0-9]+(\\.[0-9]+)?(ns|us|\u00b5s|ms|s|m|h))+$");
  static const std::regex part(
      "([0-9]+(?:\\.[0-9]+)?)(ns|us|\u00b5s|ms|s|m|h)");
  if (v == "0") return int64_t{0};
  if (!std::regex_match(v, whole))
    return InvalidArgument("invalid duration " + v);
  double total = 0;
  for (auto it = std::sregex_iterator(v.begin(), v.end(), part);
       it != std::sregex_iterator(); ++it) {
    double n = std::stod((*it)[1]);
    std::string u = (*it)[2];
    total += n * (u == "ns"                       ? 1
                  : (u == "us" || u == "\u00b5s") ? 1e3
                  : u == "ms"                     ? 1e6
                  : u == "s"                      ? 1e9
                  : u == "m"                      ? 60e9
                                                  : 3600e9);
  }
  return static_cast<int64_t>(total);
}

}  // namespace ocib::build
