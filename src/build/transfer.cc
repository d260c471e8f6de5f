#include "build/transfer.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

#include "client/registry_client.h"
#include "oci/manifest.h"

namespace ocib::build {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The registry host and repository for a reference: the name's host, else
// $OCIBUILD_REGISTRY. No implicit Docker Hub: there is no internet here.
Result<std::pair<std::string, std::string>> Remote(const ImageRef& ref) {
  std::string host = client::RegistryHost(ref.name);
  if (!host.empty()) return std::make_pair(host, client::RepositoryPath(ref.name));
  const char* env = std::getenv("OCIBUILD_REGISTRY");
  if (env && *env) return std::make_pair(std::string(env), ref.name);
  return InvalidArgument(ref.name + " names no registry (use HOST[:PORT]/" + ref.name +
                         ") and $OCIBUILD_REGISTRY is not set");
}

// Runs tasks with at most `parallel` at once, in order of submission;
// returns the first error (after every started task has ended).
Status RunBounded(const std::vector<std::function<Status()>>& tasks, size_t parallel) {
  std::deque<std::future<Status>> running;
  Status first_error;
  auto reap = [&](size_t keep) {
    while (running.size() > keep) {
      Status s = running.front().get();
      running.pop_front();
      if (!s.ok() && first_error.ok()) first_error = s;
    }
  };
  for (const auto& t : tasks) {
    running.push_back(std::async(std::launch::async, t));
    reap(parallel - 1);
  }
  reap(0);
  return first_error;
}

constexpr size_t kParallelBlobs = 3;

}  // namespace

Status PushImage(ImageStore& images, const ImageRef& ref, const std::string& pushed_dir,
                 std::ostream& out) {
  ASSIGN_OR_RETURN(StoredImage im, images.Get(ref));
  ASSIGN_OR_RETURN(auto remote, Remote(ref));
  auto [host, repo] = remote;
  out << "The push refers to repository [" << host << "/" << repo << "]\n" << std::flush;
  client::RegistryClient c(host);
  c.set_notes([&out](const std::string& n) { out << n << "\n" << std::flush; });
  // Where this client pushed each blob before, per registry: a blob another
  // repository there holds is mounted instead of sent again.
  std::string known_path = pushed_dir + "/" + host;
  json known = json::object();
  {
    std::ifstream in(known_path);
    if (in) known = json::parse(in, nullptr, false);
    if (known.is_discarded() || !known.is_object()) known = json::object();
  }
  std::vector<Digest> blobs;
  for (auto it = im.layers.rbegin(); it != im.layers.rend(); ++it) blobs.push_back(it->digest);
  blobs.push_back(im.config_digest);
  // Up to kParallel blobs at a time, each on its own connection; lines are
  // printed as blobs finish. The config goes last, after the layers.
  std::mutex mu;  // guards known and out
  auto push_one = [&](const Digest& d) -> Status {
    client::RegistryClient w(host);
    w.set_notes([&](const std::string& n) {
      std::lock_guard<std::mutex> l(mu);
      out << n << "\n" << std::flush;
    });
    ASSIGN_OR_RETURN(bool has, w.HasBlob(repo, d));
    std::string shortd = d.hex().substr(0, 12);
    std::string from;
    {
      std::lock_guard<std::mutex> l(mu);
      if (has) {
        out << shortd << ": Layer already exists\n" << std::flush;
        known[d.str()] = repo;
        return Status::Ok();
      }
      from = known.value(d.str(), "");
    }
    if (!from.empty() && from != repo) {
      auto mounted = w.MountBlob(repo, from, d);
      if (mounted.ok() && *mounted) {
        std::lock_guard<std::mutex> l(mu);
        out << shortd << ": Mounted from " << from << "\n" << std::flush;
        return Status::Ok();
      }
    }
    RETURN_IF_ERROR(w.PushBlob(repo, d, *images.store()));
    std::lock_guard<std::mutex> l(mu);
    known[d.str()] = repo;
    out << shortd << ": Pushed\n" << std::flush;
    return Status::Ok();
  };
  std::vector<std::function<Status()>> layer_tasks;
  for (size_t i = 0; i + 1 < blobs.size(); ++i)
    layer_tasks.push_back([&push_one, d = blobs[i]] { return push_one(d); });
  RETURN_IF_ERROR(RunBounded(layer_tasks, kParallelBlobs));
  RETURN_IF_ERROR(push_one(blobs.back()));  // config
  {
    std::error_code ec;
    fs::create_directories(pushed_dir, ec);
    std::ofstream(known_path + ".tmp") << known.dump();
    fs::rename(known_path + ".tmp", known_path, ec);
  }
  std::string reference = ref.digest ? ref.digest->str() : ref.tag;
  RETURN_IF_ERROR(c.PushManifest(repo, reference, im.media_type, im.manifest));
  out << reference << ": digest: " << im.manifest_digest.str() << " size: " << im.manifest.size() << "\n"
      << std::flush;
  return Status::Ok();
}

Status PullImage(ImageStore& images, const ImageRef& ref, const std::string& platform,
                 std::ostream& out) {
  ASSIGN_OR_RETURN(auto remote, Remote(ref));
  auto [host, repo] = remote;
  Store& store = *images.store();
  client::RegistryClient c(host);
  std::string reference = ref.digest ? ref.digest->str() : ref.tag;
  ASSIGN_OR_RETURN(client::FetchedManifest m, c.GetManifest(repo, reference));
  auto parsed = oci::ParseManifest(m.content, m.media_type);
  if (!parsed.ok()) return InvalidArgument("registry sent an invalid manifest: " + parsed.status().message());
  if (parsed->is_index) {
    std::string os = platform.substr(0, platform.find('/'));
    std::string arch = platform.substr(platform.find('/') + 1);
    const oci::Descriptor* pick = nullptr;
    for (const auto& d : parsed->manifests)
      if (d.platform_os.value_or("") == os && d.platform_arch.value_or("") == arch) {
        pick = &d;
        break;
      }
    if (!pick) return NotFound(ref.str() + " has no image for " + platform);
    ASSIGN_OR_RETURN(m, c.GetManifest(repo, pick->digest.str()));
    parsed = oci::ParseManifest(m.content, m.media_type);
    if (!parsed.ok() || parsed->is_index) return InvalidArgument("registry sent an invalid platform manifest");
  }
  std::vector<Digest> required;
  std::vector<oci::Descriptor> blobs = parsed->layers;
  blobs.push_back(*parsed->config);
  // Up to three blobs at a time, each on its own connection.
  std::mutex mu;  // guards out
  auto fetch_one = [&](const oci::Descriptor& b) -> Status {
    std::string shortd = b.digest.hex().substr(0, 12);
    if (store.StatBlob(b.digest).ok()) {
      RETURN_IF_ERROR(store.LinkBlob(ref.name, b.digest));
      std::lock_guard<std::mutex> l(mu);
      out << shortd << ": Already exists\n" << std::flush;
      return Status::Ok();
    }
    client::RegistryClient w(host);
    RETURN_IF_ERROR(w.FetchBlob(repo, b.digest, static_cast<uint64_t>(b.size), store, ref.name));
    std::lock_guard<std::mutex> l(mu);
    out << shortd << ": Pull complete\n" << std::flush;
    return Status::Ok();
  };
  std::vector<std::function<Status()>> tasks;
  for (const auto& b : blobs) {
    required.push_back(b.digest);
    tasks.push_back([&fetch_one, b] { return fetch_one(b); });
  }
  RETURN_IF_ERROR(RunBounded(tasks, kParallelBlobs));
  ManifestRecord rec;
  rec.content = m.content;
  rec.digest = m.digest;
  rec.media_type = parsed->media_type;
  RETURN_IF_ERROR(store.PutManifest(ref.name, rec, ref.digest ? "" : ref.tag, required, {}));
  out << "Digest: " << m.digest.str() << "\nStatus: Downloaded image for " << ref.str() << "\n" << std::flush;
  return Status::Ok();
}

}  // namespace ocib::build
