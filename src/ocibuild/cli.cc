#include "ocibuild/cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "build/builder.h"
#include "build/export.h"
#include "build/state_paths.h"
#include "client/registry_client.h"
#include "client/user_config.h"
#include "image/archive.h"
#include "image/image_store.h"
#include "image/tar_reader.h"
#include "image/transfer.h"

namespace ocib::cli {
namespace {

using namespace ocib::build;  // NOLINT: the CLI is a thin layer over these
using namespace ocib::image;  // NOLINT

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* kUsage =
    "usage: ocibuild [--root DIR] COMMAND\n"
    "  build -t REF [-f Dockerfile] [--build-arg K=V]... [--target STAGE] "
    "[--no-cache]\n"
    "        [--secret id=ID,src=FILE|env=VAR]... [--build-context "
    "NAME=DIR|docker-image://REF]...\n"
    "        [--label K=V]... [--network default|none|host] [--no-cache-filter "
    "STAGE,...]\n"
    "        [--output type=local,dest=DIR|type=tar|oci|docker,dest=FILE] "
    "[--push]\n"
    "        [--iidfile FILE] [--progress auto|plain|quiet] [-q]\n"
    "        [--cache-from type=registry,ref=REF] [--cache-to "
    "type=registry,ref=REF[,mode=min|max]]\n"
    "        [--compression gzip|zstd] [--format oci|docker] [--platform "
    "os/arch]\n"
    "        [--source-date-epoch N] [--runtime runc] CONTEXT\n"
    "  images                      list local images\n"
    "  history [--no-trunc] REF    one row per history entry\n"
    "  inspect REF                 manifest and config as JSON\n"
    "  tag SRC DST                 another name for an image\n"
    "  rmi REF...                  remove tags (and untagged images)\n"
    "  import FILE|- REF           a root filesystem tarball as a one-layer "
    "image\n"
    "  run [--rm] REF [CMD...]     run the image's entrypoint/cmd\n"
    "  push [CONN] REF             upload what the registry lacks (REF names "
    "the registry,\n"
    "                              or $OCIBUILD_REGISTRY does); an index with "
    "all platforms\n"
    "  pull [CONN] [--platform os/arch | --all-platforms] REF\n"
    "  login [CONN] HOST -u USER (--password-stdin | -p PASSWORD)\n"
    "  logout HOST                 credentials live in ~/.docker/config.json, "
    "as docker's\n"
    "  save -o FILE.tar REF...     Docker archive and OCI layout in one tar\n"
    "  load -i FILE.tar|-          load a Docker archive or OCI layout tar\n"
    "CONN: --insecure (HTTPS without verification, else plain HTTP; also "
    "\"insecure-registries\"\n"
    "      in ~/.config/ocibuild/config.json), --ca-cert FILE (HTTPS verified "
    "against FILE)\n";

int Fail(const std::string& msg) {
  std::fprintf(stderr, "ocibuild: %s\n", msg.c_str());
  return 1;
}

int Usage(const std::string& why = "") {
  if (!why.empty()) std::fprintf(stderr, "ocibuild: %s\n", why.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}

std::string DefaultRoot() {
  if (const char* r = std::getenv("OCIBUILD_ROOT"); r && *r) return r;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
    return std::string(x) + "/ocibuild";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.local/share/ocibuild";
}

std::string Human(uint64_t n) {
  char buf[32];
  if (n < 1000)
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
  else if (n < 1000000)
    std::snprintf(buf, sizeof buf, "%.3gkB", n / 1e3);
  else if (n < 1000000000)
    std::snprintf(buf, sizeof buf, "%.3gMB", n / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.3gGB", n / 1e9);
  return buf;
}

std::string Ago(const std::string& rfc3339) {
  std::tm tm{};
  if (!strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
    return rfc3339.empty() ? "N/A" : rfc3339;
  time_t t = timegm(&tm);
  // 0 is the reproducible default (no SOURCE_DATE_EPOCH, no git commit):
  // no date, not "56 years ago".
  if (t <= 0) return "N/A";
  long d = static_cast<long>(std::time(nullptr) - t);
  if (d < 60) return "Less than a minute ago";
  if (d < 3600) return std::to_string(d / 60) + " minutes ago";
  if (d < 86400) return std::to_string(d / 3600) + " hours ago";
  if (d < 86400L * 365) return std::to_string(d / 86400) + " days ago";
  return std::to_string(d / (86400L * 365)) + " years ago";
}

struct Ctx {
  std::string root;
  std::unique_ptr<Store> store;
  std::unique_ptr<ImageStore> images;
  std::unique_ptr<Builder> builder;
  // Commands that only read open a read-only snapshot: no lock (a build may
  // run meanwhile), no recovery, no fsync at open.
  Status Open(bool read_only) {
    StoreOptions o;
    o.root = root + "/store";
    o.read_only = read_only;
    auto s = OpenStore(o);
    if (!s.ok() && read_only && s.status().code() == Code::kNotFound) {
      o.read_only = false;  // a fresh root: create the store
      s = OpenStore(o);
    }
    if (!s.ok()) return s.status().WithContext("local store " + o.root);
    store = std::move(*s);
    images = std::make_unique<ImageStore>(store.get());
    builder =
        std::make_unique<Builder>(images.get(), root + "/state", &std::cout);
    return Status::Ok();
  }
};

// Transfers as the user configured them: insecure registries, parallel
// blobs and the default registry from ~/.config/ocibuild/config.json,
// credentials from docker's config.json.
TransferOptions UserTransferOptions() {
  client::UserConfig cfg = client::LoadUserConfig();
  TransferOptions o;
  o.tty = ::isatty(STDOUT_FILENO);
  o.parallel = static_cast<size_t>(cfg.max_concurrent_transfers);
  o.conn.insecure_hosts = cfg.insecure_registries;
  o.default_registry = cfg.default_registry;
  o.credentials = std::make_shared<client::DockerConfigCredentials>();
  return o;
}

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
      std::stringstream ss(v);
      for (std::string kv; std::getline(ss, kv, ',');) {
        size_t eq = kv.find('=');
        std::string k = kv.substr(0, eq),
                    val2 = eq == std::string::npos ? "" : kv.substr(eq + 1);
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

int Images(Ctx& ctx) {
  auto list = ctx.images->List();
  if (!list.ok()) return Fail(list.status().message());
  std::printf("%-40s %-20s %-14s %-24s %s\n", "REPOSITORY", "TAG", "IMAGE ID",
              "CREATED", "SIZE");
  for (const auto& im : *list)
    std::printf("%-40s %-20s %-14s %-24s %s\n", im.ref.name.c_str(),
                im.ref.tag.c_str(),
                im.config_digest.hex().substr(0, 12).c_str(),
                Ago(im.image.created).c_str(), Human(im.size()).c_str());
  return 0;
}

Result<StoredImage> Lookup(Ctx& ctx, const std::string& text) {
  ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(text));
  return ctx.images->Get(ref);
}

int History(Ctx& ctx, const std::string& ref, bool no_trunc) {
  auto im = Lookup(ctx, ref);
  if (!im.ok()) return Fail(im.status().message());
  std::printf("%-14s %-24s %-60s %-10s %s\n", "IMAGE", "CREATED", "CREATED BY",
              "SIZE", "COMMENT");
  // Sizes: non-empty history entries map to layers in order.
  std::vector<std::string> rows;
  size_t layer = 0;
  const auto& h = im->image.history;
  std::vector<uint64_t> sizes(h.size(), 0);
  for (size_t i = 0; i < h.size(); ++i)
    if (!h[i].empty_layer && layer < im->layers.size())
      sizes[i] = im->layers[layer++].size;
  for (size_t i = h.size(); i-- > 0;) {
    std::string by = h[i].created_by;
    if (!no_trunc && by.size() > 60) by = by.substr(0, 57) + "...";
    std::string id =
        i + 1 == h.size() ? im->config_digest.hex().substr(0, 12) : "<missing>";
    std::printf("%-14s %-24s %-60s %-10s %s\n", id.c_str(),
                Ago(h[i].created).c_str(), by.c_str(), Human(sizes[i]).c_str(),
                h[i].comment.c_str());
  }
  return 0;
}

int Inspect(Ctx& ctx, const std::string& ref) {
  auto im = Lookup(ctx, ref);
  if (!im.ok()) return Fail(im.status().message());
  json out = {{"Name", im->ref.str()},
              {"Digest", im->manifest_digest.str()},
              {"Id", im->config_digest.str()},
              {"MediaType", im->media_type},
              {"Size", im->size()},
              {"Manifest", json::parse(im->manifest)},
              {"Config", json::parse(im->config_json)}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

int Import(Ctx& ctx, const std::string& file, const std::string& ref_text) {
  auto ref = ParseImageRef(ref_text);
  if (!ref.ok()) return Fail(ref.status().message());
  FILE* in = file == "-" ? stdin : std::fopen(file.c_str(), "rb");
  if (!in) return Fail("cannot open " + file);
  ByteSource raw = [in](char* buf, size_t n) -> Result<size_t> {
    size_t k = std::fread(buf, 1, n, in);
    if (k == 0 && std::ferror(in)) return Internal("read error");
    return k;
  };
  ByteSource tar = Decompressing(raw);
  auto w = LayerWriter::Create(*ctx.store, Compression::kGzip);
  if (!w.ok()) return Fail(w.status().message());
  // Validate while copying: the bytes must be a tar.
  std::string head;
  std::vector<char> buf(1 << 20);
  while (true) {
    auto n = tar(buf.data(), buf.size());
    if (!n.ok()) return Fail(file + ": " + n.status().message());
    if (*n == 0) break;
    if (head.size() < 512)
      head.append(buf.data(), std::min<size_t>(*n, 512 - head.size()));
    Status s = (*w)->WriteRaw(buf.data(), *n);
    if (!s.ok()) return Fail(s.message());
  }
  if (in != stdin) std::fclose(in);
  if (head.size() < 512 || (head.compare(257, 5, "ustar") != 0 &&
                            head.find_first_not_of('\0') != std::string::npos))
    return Fail(file + " is not a tar archive");
  auto info = (*w)->CommitRaw();
  if (!info.ok()) return Fail(info.status().message());
  Image im;
  const char* sde = std::getenv("SOURCE_DATE_EPOCH");
  im.created = Rfc3339(sde ? std::atoll(sde) : std::time(nullptr));
  im.diff_ids.push_back(info->diff_id);
  im.history.push_back(
      {im.created,
       "import " + (file == "-" ? std::string("-")
                                : fs::path(file).filename().string()),
       "ocibuild import", false});
  std::vector<LayerDescriptor> layers = {
      {info->media_type, info->digest, info->size}};
  auto d = ctx.images->Commit(*ref, im, layers, ManifestFormat::kOci);
  if (!d.ok()) return Fail(d.status().message());
  // Extract now, as docker import does, so the first RUN on it starts at once.
  auto dirs = ctx.builder->LayerDirs(layers, im.diff_ids);
  if (!dirs.ok()) return Fail(dirs.status().message());
  std::printf("%s\n", d->str().c_str());
  return 0;
}

// Takes --insecure and --ca-cert FILE out of a; false on a bad flag.
bool TakeConnectionFlags(std::vector<std::string>& a, client::Connection* conn,
                         std::string* why) {
  for (size_t i = 0; i < a.size();) {
    if (a[i] == "--insecure") {
      conn->insecure = true;
      a.erase(a.begin() + i);
    } else if (a[i] == "--ca-cert") {
      if (i + 1 >= a.size()) {
        *why = "--ca-cert needs a file";
        return false;
      }
      conn->ca_cert = a[i + 1];
      if (!fs::exists(conn->ca_cert)) {
        *why = "CA certificate " + conn->ca_cert + " does not exist";
        return false;
      }
      a.erase(a.begin() + i, a.begin() + i + 2);
    } else {
      ++i;
    }
  }
  return true;
}

int Push(Ctx& ctx, std::vector<std::string> a) {
  TransferOptions o = UserTransferOptions();
  std::string why;
  if (!TakeConnectionFlags(a, &o.conn, &why)) return Usage(why);
  if (a.size() != 1 || a[0][0] == '-') return Usage("push needs one image");
  auto ref = ParseImageRef(a[0]);
  if (!ref.ok()) return Fail(ref.status().message());
  Status s =
      PushImage(*ctx.images, *ref,
                StatePaths{ctx.builder->state_dir()}.Pushed(), o, std::cout);
  return s.ok() ? 0 : Fail(s.message());
}

int Pull(Ctx& ctx, std::vector<std::string> a) {
  TransferOptions o = UserTransferOptions();
  std::string why;
  if (!TakeConnectionFlags(a, &o.conn, &why)) return Usage(why);
  std::vector<std::string> rest;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--platform" && i + 1 < a.size())
      o.platform = a[++i];
    else if (a[i] == "--all-platforms" || a[i] == "-a")
      o.all_platforms = true;
    else if (a[i][0] == '-')
      return Usage("unknown pull flag " + a[i]);
    else
      rest.push_back(a[i]);
  }
  if (rest.size() != 1) return Usage("pull needs one image");
  auto ref = ParseImageRef(rest[0]);
  if (!ref.ok()) return Fail(ref.status().message());
  Status s = PullImage(*ctx.images, *ref, o, std::cout);
  return s.ok() ? 0 : Fail(s.message());
}

int RunCmd(Ctx& ctx, std::vector<std::string> a) {
  std::string runtime = "runc";
  size_t i = 0;
  for (; i < a.size() && a[i][0] == '-'; ++i) {
    if (a[i] == "--rm") continue;
    if (a[i] == "--runtime" && i + 1 < a.size()) {
      runtime = a[++i];
      continue;
    }
    return Usage("unknown flag " + a[i]);
  }
  if (i >= a.size()) return Usage("run needs an image");
  auto im = Lookup(ctx, a[i]);
  if (!im.ok()) return Fail(im.status().message());
  std::vector<std::string> cmd(a.begin() + i + 1, a.end());
  auto code = RunImage(*ctx.builder, *im, cmd, runtime);
  if (!code.ok()) return Fail(code.status().message());
  return *code;
}

}  // namespace

int RunCli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  Ctx ctx;
  ctx.root = DefaultRoot();
  // --root anywhere before or after the command.
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--root") {
      if (i + 1 >= args.size()) return Usage("--root needs a directory");
      ctx.root = args[i + 1];
      args.erase(args.begin() + i, args.begin() + i + 2);
      break;
    }
  if (args.empty() || args[0] == "-h" || args[0] == "--help" ||
      args[0] == "help")
    return Usage();
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  static const std::set<std::string> known = {
      "build", "images", "history", "inspect", "tag",  "rmi",   "import",
      "run",   "push",   "pull",    "save",    "load", "login", "logout"};
  if (!known.count(cmd)) return Usage("unknown command \"" + cmd + "\"");
  if (cmd == "login") {
    std::string host, user, password;
    bool from_stdin = false;
    client::Connection conn;
    conn.insecure_hosts = client::LoadUserConfig().insecure_registries;
    std::string why;
    if (!TakeConnectionFlags(rest, &conn, &why)) return Usage(why);
    for (size_t i = 0; i < rest.size(); ++i) {
      if ((rest[i] == "-u" || rest[i] == "--username") && i + 1 < rest.size())
        user = rest[++i];
      else if ((rest[i] == "-p" || rest[i] == "--password") &&
               i + 1 < rest.size())
        password = rest[++i];
      else if (rest[i] == "--password-stdin")
        from_stdin = true;
      else if (host.empty() && rest[i][0] != '-')
        host = rest[i];
      else
        return Usage("unknown login argument " + rest[i]);
    }
    if (host.empty() || user.empty())
      return Usage("login needs HOST and -u USER");
    if (from_stdin) {
      std::getline(std::cin, password);
      while (!password.empty() &&
             (password.back() == '\r' || password.back() == '\n'))
        password.pop_back();
    }
    if (password.empty())
      return Usage("login needs a password (--password-stdin or -p)");
    client::RegistryClient c(host, user + ":" + password, conn);
    if (Status s = c.Ping(); !s.ok()) return Fail(s.message());
    if (Status s = client::StoreCredentials(host, user, password); !s.ok())
      return Fail(s.message());
    std::printf("Login Succeeded\n");
    return 0;
  }
  if (cmd == "logout") {
    if (rest.size() != 1) return Usage("logout needs HOST");
    if (Status s = client::RemoveCredentials(rest[0]); !s.ok())
      return Fail(s.message());
    std::printf("Removing login credentials for %s\n", rest[0].c_str());
    return 0;
  }
  static const std::set<std::string> kReadOnly = {"images", "history",
                                                  "inspect", "push", "save"};
  if (Status s = ctx.Open(kReadOnly.count(cmd) > 0); !s.ok())
    return Fail(s.message());
  if (cmd == "build") return Build(ctx, rest);
  if (cmd == "images")
    return rest.empty() ? Images(ctx) : Usage("images takes no arguments");
  if (cmd == "history") {
    bool no_trunc = !rest.empty() && rest[0] == "--no-trunc";
    if (no_trunc) rest.erase(rest.begin());
    return rest.size() == 1 ? History(ctx, rest[0], no_trunc)
                            : Usage("history needs one image");
  }
  if (cmd == "inspect")
    return rest.size() == 1 ? Inspect(ctx, rest[0])
                            : Usage("inspect needs one image");
  if (cmd == "tag") {
    if (rest.size() != 2) return Usage("tag needs SRC and DST");
    auto src = ParseImageRef(rest[0]);
    auto dst = ParseImageRef(rest[1]);
    if (!src.ok()) return Fail(src.status().message());
    if (!dst.ok()) return Fail(dst.status().message());
    Status s = ctx.images->Tag(*src, *dst);
    return s.ok() ? 0 : Fail(s.message());
  }
  if (cmd == "rmi") {
    if (rest.empty()) return Usage("rmi needs an image");
    int rc = 0;
    for (const auto& r : rest) {
      auto ref = ParseImageRef(r);
      Status s = ref.ok() ? ctx.images->Remove(*ref) : ref.status();
      if (!s.ok())
        rc = Fail(s.message());
      else
        std::printf("Untagged: %s\n", ref->str().c_str());
    }
    return rc;
  }
  if (cmd == "import")
    return rest.size() == 2 ? Import(ctx, rest[0], rest[1])
                            : Usage("import needs FILE|- and REF");
  if (cmd == "run") return RunCmd(ctx, rest);
  if (cmd == "push") return Push(ctx, rest);
  if (cmd == "pull") return Pull(ctx, rest);
  if (cmd == "save") {
    std::string file;
    std::vector<ImageRef> refs;
    for (size_t i = 0; i < rest.size(); ++i) {
      if ((rest[i] == "-o" || rest[i] == "--output") && i + 1 < rest.size()) {
        file = rest[++i];
        continue;
      }
      auto r = ParseImageRef(rest[i]);
      if (!r.ok()) return Fail(r.status().message());
      refs.push_back(*r);
    }
    if (file.empty() || refs.empty())
      return Usage("save needs -o FILE and at least one image");
    Status s = SaveImages(*ctx.images, refs, file);
    return s.ok() ? 0 : Fail(s.message());
  }
  if (cmd == "load") {
    if (rest.size() != 2 || (rest[0] != "-i" && rest[0] != "--input"))
      return Usage("load needs -i FILE");
    Status s = LoadImages(*ctx.images, rest[1], std::cout);
    return s.ok() ? 0 : Fail(s.message());
  }
  return Usage();
}

}  // namespace ocib::cli
