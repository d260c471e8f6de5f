#include "image/transfer.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "client/registry_client.h"
#include "image/progress.h"
#include "oci/manifest.h"

namespace ocib::image {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The registry host and repository for a reference: the name's host, else
// $OCIBUILD_REGISTRY, else "default-registry" in the client config. No
// implicit Docker Hub: there is no internet here.
Result<std::pair<std::string, std::string>> Remote(
    const ImageRef& ref, const TransferOptions& opts) {
  std::string host = client::RegistryHost(ref.name);
  if (!host.empty())
    return std::make_pair(host, client::RepositoryPath(ref.name));
  const char* env = std::getenv("OCIBUILD_REGISTRY");
  if (env && *env) return std::make_pair(std::string(env), ref.name);
  if (!opts.default_registry.empty())
    return std::make_pair(opts.default_registry, ref.name);
  return InvalidArgument(ref.name + " names no registry (use HOST[:PORT]/" +
                         ref.name +
                         "), and neither $OCIBUILD_REGISTRY nor "
                         "\"default-registry\" in the ocibuild config is set");
}

// One transfer's connection: its clients share a session (one token for
// the parallel blob connections, one plain-HTTP probe).
client::Connection SessionOf(const TransferOptions& opts) {
  client::Connection c = opts.conn;
  if (!c.session) c.session = std::make_shared<client::ClientSession>();
  return c;
}

std::string CredentialsFor(const TransferOptions& opts,
                           const std::string& host) {
  return opts.credentials ? opts.credentials->Credentials(host) : std::string();
}

// Runs tasks on up to `parallel` threads, each taking the next task as it
// finishes one (so a slow task never holds back the others); returns the
// first error in task order, after every started task has ended. After an
// error no new task starts.
Status RunBounded(const std::vector<std::function<Status()>>& tasks,
                  size_t parallel) {
  std::vector<Status> results(tasks.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    for (size_t i; !failed && (i = next++) < tasks.size();) {
      results[i] = tasks[i]();
      if (!results[i].ok()) failed = true;
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(parallel, tasks.size()); ++t)
    threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  for (const auto& r : results)
    if (!r.ok()) return r;
  return Status::Ok();
}

std::string Short(const Digest& d) { return d.hex().substr(0, 12); }

// The blobs an image manifest references: layers first, config last.
Result<std::vector<oci::Descriptor>> BlobsOf(const std::string& content,
                                             const std::string& media_type) {
  auto parsed = oci::ParseManifest(content, media_type);
  if (!parsed.ok()) return parsed.status();
  if (parsed->is_index) return InvalidArgument("nested index");
  std::vector<oci::Descriptor> out = parsed->layers;
  if (parsed->config) out.push_back(*parsed->config);
  return out;
}

}  // namespace

Status PushImage(ImageStore& images, const ImageRef& ref,
                 const std::string& pushed_dir, const TransferOptions& opts,
                 std::ostream& out) {
  ASSIGN_OR_RETURN(ManifestRecord top, images.Resolve(ref));
  ASSIGN_OR_RETURN(auto remote, Remote(ref, opts));
  // Named copies, not a structured binding: lambdas below capture them
  // (clang 14, used for the sanitizer builds, cannot capture bindings).
  const std::string host = remote.first, repo = remote.second;
  const client::Connection conn = SessionOf(opts);
  const std::string creds = CredentialsFor(opts, host);
  ProgressBoard board(out, opts.tty);
  board.Note("The push refers to repository [" + host + "/" + repo + "]");
  client::RegistryClient c(host, creds, conn);
  c.set_notes([&board](const std::string& n) { board.Note(n); });
  RETURN_IF_ERROR(c.Ping());

  // The image manifests to push: the one the reference names, or every
  // platform manifest of an index (then the index itself).
  auto parsed_top = oci::ParseManifest(top.content, top.media_type);
  if (!parsed_top.ok()) return parsed_top.status();
  std::vector<ManifestRecord> manifests;
  if (parsed_top->is_index) {
    for (const auto& child : parsed_top->manifests) {
      auto m = images.store()->GetManifest(ref.name, child.digest);
      if (!m.ok())
        return NotFound(ref.str() + ": platform manifest " +
                        child.digest.str() + " is not local");
      manifests.push_back(std::move(*m));
    }
  } else {
    manifests.push_back(top);
  }

  // Where this client pushed each blob before, per registry: a blob another
  // repository there holds is mounted instead of sent again.
  std::string known_path = pushed_dir + "/" + host;
  json known = json::object();
  {
    std::ifstream in(known_path);
    if (in) known = json::parse(in, nullptr, false);
    if (known.is_discarded() || !known.is_object()) known = json::object();
  }
  // Every blob once (platforms share layers).
  std::vector<Digest> layers, configs;
  std::set<std::string> seen;
  for (const auto& m : manifests) {
    ASSIGN_OR_RETURN(auto blobs, BlobsOf(m.content, m.media_type));
    for (size_t i = 0; i < blobs.size(); ++i) {
      if (!seen.insert(blobs[i].digest.str()).second) continue;
      (i + 1 == blobs.size() ? configs : layers).push_back(blobs[i].digest);
    }
  }
  for (const auto& d : layers) board.Status(Short(d), "Waiting");

  std::mutex mu;  // guards known
  auto push_one = [&](const Digest& d) -> Status {
    client::RegistryClient w(host, creds, conn);
    w.set_notes([&board](const std::string& n) { board.Note(n); });
    ASSIGN_OR_RETURN(bool has, w.HasBlob(repo, d));
    std::string shortd = Short(d);
    std::string from;
    {
      std::lock_guard<std::mutex> l(mu);
      if (has)
        known[d.str()] = repo;
      else
        from = known.value(d.str(), "");
    }
    if (has) {
      board.Status(shortd, "Layer already exists");
      return Status::Ok();
    }
    if (!from.empty() && from != repo) {
      auto mounted = w.MountBlob(repo, from, d);
      if (mounted.ok() && *mounted) {
        board.Status(shortd, "Mounted from " + from);
        return Status::Ok();
      }
    }
    RETURN_IF_ERROR(w.PushBlob(repo, d, *images.store(),
                               [&board, shortd](uint64_t done, uint64_t total) {
                                 board.Bytes(shortd, "Pushing", done, total);
                               }));
    {
      std::lock_guard<std::mutex> l(mu);
      known[d.str()] = repo;
    }
    board.Status(shortd, "Pushed");
    return Status::Ok();
  };
  // Configs first (small, so they never wait behind a large layer), then
  // layers; the manifests go once every blob is in.
  std::vector<std::function<Status()>> tasks;
  for (const auto& d : configs)
    tasks.push_back([&push_one, d] { return push_one(d); });
  for (const auto& d : layers)
    tasks.push_back([&push_one, d] { return push_one(d); });
  RETURN_IF_ERROR(RunBounded(tasks, opts.parallel));
  {
    std::error_code ec;
    fs::create_directories(pushed_dir, ec);
    std::ofstream(known_path + ".tmp") << known.dump();
    fs::rename(known_path + ".tmp", known_path, ec);
  }
  std::string reference = ref.digest ? ref.digest->str() : ref.tag;
  if (parsed_top->is_index) {
    for (const auto& m : manifests)
      RETURN_IF_ERROR(
          c.PushManifest(repo, m.digest.str(), m.media_type, m.content));
  }
  RETURN_IF_ERROR(c.PushManifest(repo, reference, top.media_type, top.content));
  board.Final(reference + ": digest: " + top.digest.str() +
              " size: " + std::to_string(top.content.size()));
  return Status::Ok();
}

Status PullImage(ImageStore& images, const ImageRef& ref,
                 const TransferOptions& opts, std::ostream& out) {
  ASSIGN_OR_RETURN(auto remote, Remote(ref, opts));
  // Named copies, not a structured binding: lambdas below capture them
  // (clang 14, used for the sanitizer builds, cannot capture bindings).
  const std::string host = remote.first, repo = remote.second;
  const client::Connection conn = SessionOf(opts);
  const std::string creds = CredentialsFor(opts, host);
  Store& store = *images.store();
  ProgressBoard board(out, opts.tty);
  client::RegistryClient c(host, creds, conn);
  c.set_notes([&board](const std::string& n) { board.Note(n); });
  RETURN_IF_ERROR(
      c.Ping());  // an unreachable registry fails at once, without retries
  std::string reference = ref.digest ? ref.digest->str() : ref.tag;
  ASSIGN_OR_RETURN(client::FetchedManifest top, c.GetManifest(repo, reference));
  auto parsed = oci::ParseManifest(top.content, top.media_type);
  if (!parsed.ok())
    return InvalidArgument("registry sent an invalid manifest: " +
                           parsed.status().message());

  // The image manifests to fetch: one platform's, or all of an index's.
  std::vector<client::FetchedManifest> manifests;
  if (parsed->is_index && opts.all_platforms) {
    for (const auto& d : parsed->manifests) {
      ASSIGN_OR_RETURN(auto m, c.GetManifest(repo, d.digest.str()));
      manifests.push_back(std::move(m));
    }
  } else if (parsed->is_index) {
    const oci::Descriptor* pick = oci::PickPlatform(*parsed, opts.platform);
    if (!pick)
      return NotFound(ref.str() + " has no image for " + opts.platform);
    ASSIGN_OR_RETURN(auto m, c.GetManifest(repo, pick->digest.str()));
    manifests.push_back(std::move(m));
  } else {
    manifests.push_back(top);
  }

  std::vector<std::vector<Digest>> required(manifests.size());
  std::vector<oci::Descriptor> blobs;
  std::set<std::string> seen;
  for (size_t i = 0; i < manifests.size(); ++i) {
    auto b = BlobsOf(manifests[i].content, manifests[i].media_type);
    if (!b.ok())
      return InvalidArgument("registry sent an invalid platform manifest: " +
                             b.status().message());
    for (const auto& d : *b) {
      required[i].push_back(d.digest);
      if (seen.insert(d.digest.str()).second) blobs.push_back(d);
    }
  }
  for (const auto& b : blobs) board.Status(Short(b.digest), "Waiting");
  auto fetch_one = [&](const oci::Descriptor& b) -> Status {
    std::string shortd = Short(b.digest);
    if (store.StatBlob(b.digest).ok()) {
      RETURN_IF_ERROR(store.LinkBlob(ref.name, b.digest));
      board.Status(shortd, "Already exists");
      return Status::Ok();
    }
    client::RegistryClient w(host, creds, conn);
    w.set_notes([&board](const std::string& n) { board.Note(n); });
    RETURN_IF_ERROR(
        w.FetchBlob(repo, b.digest, static_cast<uint64_t>(b.size), store,
                    ref.name, [&board, shortd](uint64_t done, uint64_t total) {
                      board.Bytes(shortd, "Downloading", done, total);
                    }));
    board.Status(shortd, "Pull complete");
    return Status::Ok();
  };
  std::vector<std::function<Status()>> tasks;
  for (const auto& b : blobs)
    tasks.push_back([&fetch_one, b] { return fetch_one(b); });
  RETURN_IF_ERROR(RunBounded(tasks, opts.parallel));

  std::string tag = ref.digest ? "" : ref.tag;
  auto record = [](const client::FetchedManifest& f,
                   const std::string& media_type) {
    ManifestRecord rec;
    rec.content = f.content;
    rec.digest = f.digest;
    rec.media_type = media_type;
    return rec;
  };
  if (manifests.size() == 1 && !(parsed->is_index && opts.all_platforms)) {
    auto p = oci::ParseManifest(manifests[0].content, manifests[0].media_type);
    RETURN_IF_ERROR(store.PutManifest(
        ref.name, record(manifests[0], p->media_type), tag, required[0], {}));
    board.Final("Digest: " + manifests[0].digest.str());
  } else {
    std::vector<Digest> children;
    for (size_t i = 0; i < manifests.size(); ++i) {
      auto p =
          oci::ParseManifest(manifests[i].content, manifests[i].media_type);
      RETURN_IF_ERROR(store.PutManifest(
          ref.name, record(manifests[i], p->media_type), "", required[i], {}));
      children.push_back(manifests[i].digest);
    }
    RETURN_IF_ERROR(store.PutManifest(ref.name, record(top, parsed->media_type),
                                      tag, {}, children));
    board.Final("Digest: " + top.digest.str());
  }
  board.Final("Status: Downloaded image for " + ref.str());
  return Status::Ok();
}

}  // namespace ocib::image
