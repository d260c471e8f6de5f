// `ocibuild build`: docker build's flags to BuildOptions, the build, then
// its outputs (--output, --push, --iidfile, -q).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "build/csv_options.h"
#include "build/export.h"
#include "build/state_paths.h"
#include "ocibuild/cli_context.h"

namespace ocib::cli {

using namespace ocib::build;  // NOLINT: the CLI is a thin layer over these
using namespace ocib::image;  // NOLINT
namespace fs = std::filesystem;

int Build(Ctx& ctx, std::vector<std::string> a) {
  BuildOptions o;
  o.transfer = UserTransferOptions();
  o.transfer.tty = false;
  std::string context, iidfile;
  std::vector<OutputSpec> outputs;
  bool push = false, quiet = false;
  o.source_date_epoch_unset = true;
  if (const char* e = std::getenv("SOURCE_DATE_EPOCH"); e && *e) {
    o.source_date_epoch = std::atoll(e);
    o.source_date_epoch_unset = false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    auto val = [&](std::string* out) {
      if (i + 1 >= a.size()) return false;
      *out = a[++i];
      return true;
    };
    std::string v;
    const std::string& f = a[i];
    if ((f == "-t" || f == "--tag") && val(&v)) {
      auto r = ParseImageRef(v);
      if (!r.ok()) return Fail(r.status().message());
      o.tags.push_back(*r);
    } else if ((f == "-f" || f == "--file") && val(&v)) {
      o.dockerfile = v;
    } else if (f == "--build-arg" && val(&v)) {
      size_t eq = v.find('=');
      if (eq == std::string::npos) {
        const char* env = std::getenv(v.c_str());
        if (env) o.build_args[v] = env;
      } else {
        o.build_args[v.substr(0, eq)] = v.substr(eq + 1);
      }
    } else if (f == "--secret" && val(&v)) {
      // id=ID,src=FILE (also source=), or id=ID,env=VAR; as docker build.
      std::string id, src, env;
      for (const auto& [k, val2] : ParseCsvOptions(v)) {
        if (k == "id")
          id = val2;
        else if (k == "src" || k == "source")
          src = val2;
        else if (k == "env")
          env = val2;
        else if (k == "type" && (val2 == "file" || val2 == "env"))
          continue;
        else
          return Fail("--secret: unknown field \"" + k +
                      "\" (id=ID,src=FILE or id=ID,env=VAR)");
      }
      if (id.empty())
        id = !src.empty() ? fs::path(src).filename().string() : env;
      if (id.empty())
        return Fail("--secret needs id=ID and src=FILE or env=VAR");
      if (!src.empty()) {
        std::ifstream in(src, std::ios::binary);
        if (!in) return Fail("--secret " + id + ": cannot read " + src);
        std::stringstream content;
        content << in.rdbuf();
        o.secrets[id] = content.str();
      } else {
        const char* e = std::getenv((env.empty() ? id : env).c_str());
        if (!e)
          return Fail("--secret " + id + ": environment variable " +
                      (env.empty() ? id : env) + " is not set");
        o.secrets[id] = e;
      }
    } else if (f == "--label" && val(&v)) {
      size_t eq = v.find('=');
      o.labels[v.substr(0, eq)] =
          eq == std::string::npos ? "" : v.substr(eq + 1);
    } else if (f == "--iidfile" && val(&v)) {
      iidfile = v;
    } else if ((f == "--output" || f == "-o") && val(&v)) {
      auto spec = ParseOutputSpec(v);
      if (!spec.ok()) return Fail(spec.status().message());
      outputs.push_back(*spec);
    } else if (f == "--push") {
      push = true;
    } else if ((f == "-q" || f == "--quiet")) {
      quiet = true;
    } else if (f.rfind("--progress", 0) == 0 &&
               (f.size() > 10 ? (v = f.substr(11), f[10] == '=') : val(&v))) {
      if (v == "quiet")
        quiet = true;
      else if (v != "auto" && v != "plain" && v != "tty")
        return Fail("--progress must be auto, plain, tty or quiet");
    } else if (f.rfind("--network", 0) == 0 &&
               (f.size() > 9 ? (v = f.substr(10), f[9] == '=') : val(&v))) {
      if (v != "default" && v != "none" && v != "host")
        return Fail("--network must be default, none or host");
      o.network = v;
    } else if (f == "--no-cache-filter" && val(&v)) {
      std::stringstream ss(v);
      for (std::string st; std::getline(ss, st, ',');) {
        for (char& c : st)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!st.empty()) o.no_cache_stages.insert(st);
      }
    } else if (f == "--build-context" && val(&v)) {
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
        return Fail(
            "--build-context needs NAME=DIR or NAME=docker-image://REF");
      std::string name = v.substr(0, eq), value = v.substr(eq + 1);
      if (value.rfind("docker-image://", 0) != 0) {
        if (value.find("://") != std::string::npos)
          return Fail("--build-context " + name +
                      ": only directories and docker-image:// are supported");
        if (!fs::is_directory(value))
          return Fail("--build-context " + name + ": " + value +
                      " is not a directory");
      }
      o.contexts[name] = value;
    } else if ((f == "--cache-from" || f == "--cache-to") && val(&v)) {
      auto spec = ParseCacheSpec(v, f == "--cache-to");
      if (!spec.ok()) return Fail(f + ": " + spec.status().message());
      (f == "--cache-to" ? o.cache_to : o.cache_from).push_back(*spec);
    } else if (f == "--target" && val(&v)) {
      o.target = v;
    } else if (f == "--no-cache") {
      o.no_cache = true;
    } else if (f == "--compression" && val(&v)) {
      auto c = ParseCompression(v);
      if (!c.ok()) return Fail(c.status().message());
      o.compression = *c;
    } else if (f == "--format" && val(&v)) {
      if (v == "oci")
        o.format = ManifestFormat::kOci;
      else if (v == "docker")
        o.format = ManifestFormat::kDocker;
      else
        return Fail("--format must be oci or docker");
    } else if (f == "--platform" && val(&v)) {
      o.platform = v;
    } else if (f == "--source-date-epoch" && val(&v)) {
      o.source_date_epoch = std::atoll(v.c_str());
      o.source_date_epoch_unset = false;
    } else if (f == "--runtime" && val(&v)) {
      o.runtime = v;
    } else if (!f.empty() && f[0] == '-') {
      return Usage("unknown or incomplete flag " + f);
    } else if (context.empty()) {
      context = f;
    } else {
      return Usage("more than one build context");
    }
  }
  if (context.empty()) return Usage("build needs a CONTEXT directory");
  o.context_dir = context;
  if (!o.dockerfile.empty() && fs::path(o.dockerfile).is_relative() &&
      !fs::exists(o.dockerfile))
    o.dockerfile = context + "/" + o.dockerfile;
  if (o.source_date_epoch_unset) {
    // Reproducible by default: the context's last commit time when it is a
    // git checkout, else 0.
    if (auto t = GitCommitTime(context)) o.source_date_epoch = *t;
  }
  if (push && o.tags.empty())
    return Fail("--push needs -t NAME naming a registry");
  std::unique_ptr<std::ostream> null_out;
  std::unique_ptr<Builder> quiet_builder;
  Builder* builder = ctx.builder.get();
  int devnull = -1;
  if (quiet) {
    null_out = std::make_unique<std::ostream>(nullptr);
    quiet_builder = std::make_unique<Builder>(
        ctx.images.get(), ctx.builder->state_dir(), null_out.get());
    builder = quiet_builder.get();
    devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    o.run_output_fd = devnull;
  }
  auto r = builder->Build(o);
  if (devnull >= 0) ::close(devnull);
  if (!r.ok()) return Fail(r.status().message());
  ImageRef built = o.tags.empty()
                       ? ImageRef{"_ocibuild/untagged", "latest", std::nullopt}
                       : o.tags[0];
  for (const auto& out : outputs) {
    Status s = ExportImage(*builder, *ctx.images, built, out);
    if (!s.ok()) return Fail("--output " + out.dest + ": " + s.message());
  }
  if (push) {
    TransferOptions to = o.transfer;
    for (const auto& t : o.tags) {
      std::ostringstream sink;
      Status s =
          PushImage(*ctx.images, t, StatePaths{builder->state_dir()}.Pushed(),
                    to, quiet ? sink : std::cout);
      if (!s.ok()) return Fail("--push " + t.str() + ": " + s.message());
    }
  }
  if (!iidfile.empty()) {
    std::ofstream f(iidfile, std::ios::trunc);
    f << r->config_digest.str();
    if (!f) return Fail("--iidfile " + iidfile + ": cannot write");
  }
  if (quiet) std::printf("%s\n", r->config_digest.str().c_str());
  return 0;
}

}  // namespace ocib::cli
