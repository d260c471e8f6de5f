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
#include "ocibuild/cli_context.h"
#include "util/version.h"

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
    "  rmi REF...                  untag; delete what only that image used\n"
    "  image prune [-a]            delete untagged images (-a: every image)\n"
    "  builder prune [--keep-storage SIZE] [--filter until=DURATION]\n"
    "                              delete build cache (all, or the oldest)\n"
    "  system df                   space used by images and build cache\n"
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

}  // namespace

int Fail(const std::string& msg) {
  std::fprintf(stderr, "ocibuild: %s\n", msg.c_str());
  return 1;
}

int Usage(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "ocibuild: %s\n", why.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}

namespace {

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

}  // namespace

Status Ctx::Open(bool read_only) {
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

namespace {

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
  if (args[0] == "--version" || args[0] == "version") {
    std::printf("ocibuild %s (commit %s)\n", Version(), GitCommit());
    return 0;
  }
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  static const std::set<std::string> known = {
      "build",  "images", "history", "inspect", "tag",   "rmi",
      "import", "run",    "push",    "pull",    "save",  "load",
      "login",  "logout", "image",   "builder", "system"};
  if (!known.count(cmd)) return Usage("unknown command \"" + cmd + "\"");
  if (cmd == "rmi" || cmd == "image" || cmd == "builder" || cmd == "system")
    return DiskCommand(ctx, cmd, rest);
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
