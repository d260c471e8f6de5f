#include "image/archive.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "image/tar_reader.h"
#include "image/tar_writer.h"
#include "oci/image_ref.h"
#include "oci/manifest.h"
#include "oci/media_types.h"

namespace ocib::image {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string BlobPath(const Digest& d) {
  return "blobs/" + std::string(d.algorithm_name()) + "/" + d.hex();
}

Status AddBytes(TarWriter& tw, const std::string& path,
                const std::string& data) {
  TarEntry e;
  e.path = path;
  e.size = data.size();
  RETURN_IF_ERROR(tw.WriteHeader(e));
  return tw.WriteData(data.data(), data.size());
}

Status AddDir(TarWriter& tw, const std::string& path) {
  TarEntry e;
  e.path = path;
  e.type = TarEntry::kDir;
  e.mode = 0755;
  return tw.WriteHeader(e);
}

Status AddBlob(TarWriter& tw, Store& store, const Digest& d) {
  ASSIGN_OR_RETURN(auto h, store.OpenBlob(d));
  TarEntry e;
  e.path = BlobPath(d);
  e.size = h->size();
  RETURN_IF_ERROR(tw.WriteHeader(e));
  std::vector<char> buf(1 << 20);
  uint64_t off = 0;
  while (off < e.size) {
    ASSIGN_OR_RETURN(size_t n, h->ReadAt(off, buf.data(), buf.size()));
    if (n == 0) return Internal("short read of " + d.str());
    RETURN_IF_ERROR(tw.WriteData(buf.data(), n));
    off += n;
  }
  return Status::Ok();
}

// Layer media type from the blob's first bytes (for Docker archives, whose
// manifest.json does not say).
std::string SniffLayerType(Store& store, const Digest& d) {
  auto h = store.OpenBlob(d);
  char m[4] = {};
  if (h.ok()) (*h)->ReadAt(0, m, 4).status().IgnoreError();
  const unsigned char* u = reinterpret_cast<const unsigned char*>(m);
  if (u[0] == 0x1f && u[1] == 0x8b) return std::string(oci::kDockerLayerGzip);
  if (u[0] == 0x28 && u[1] == 0xb5 && u[2] == 0x2f && u[3] == 0xfd)
    return std::string(oci::kOciLayerZstd);
  return "application/vnd.docker.image.rootfs.diff.tar";
}

// Docker's short names: "docker.io/library/x:1" and "docker.io/team/x:1"
// are stored as "x:1" and "team/x:1", as docker shows them.
std::string Normalize(const std::string& name) {
  return oci::FamiliarName(name);
}

}  // namespace

Status SaveImages(ImageStore& images, const std::vector<ImageRef>& refs,
                  const std::string& path) {
  if (refs.empty()) return InvalidArgument("save needs at least one image");
  std::string tmp = path + ".tmp-ocibuild";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Internal("cannot create " + path);
  TarWriter tw([f](const char* d, size_t n) {
    return std::fwrite(d, 1, n, f) == n ? Status::Ok()
                                        : Internal("write error");
  });
  json index = {{"schemaVersion", 2},
                {"mediaType", oci::kOciIndex},
                {"manifests", json::array()}};
  json docker = json::array();
  json repositories = json::object();
  std::set<std::string> written;
  Status st = [&]() -> Status {
    RETURN_IF_ERROR(
        AddBytes(tw, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
    RETURN_IF_ERROR(AddDir(tw, "blobs"));
    RETURN_IF_ERROR(AddDir(tw, "blobs/sha256"));
    for (const auto& ref : refs) {
      ASSIGN_OR_RETURN(StoredImage im, images.Get(ref));
      std::vector<Digest> blobs = {im.manifest_digest, im.config_digest};
      for (const auto& l : im.layers) blobs.push_back(l.digest);
      for (const auto& d : blobs) {
        if (!written.insert(d.str()).second) continue;
        if (d == im.manifest_digest) {
          RETURN_IF_ERROR(AddBytes(tw, BlobPath(d), im.manifest));
        } else {
          RETURN_IF_ERROR(AddBlob(tw, *images.store(), d));
        }
      }
      std::string full =
          ref.name + ":" + (ref.tag.empty() ? "latest" : ref.tag);
      index["manifests"].push_back(
          {{"mediaType", im.media_type},
           {"digest", im.manifest_digest.str()},
           {"size", im.manifest.size()},
           {"annotations",
            {{"io.containerd.image.name", full},
             {"org.opencontainers.image.ref.name", ref.tag}}}});
      json layers = json::array();
      for (const auto& l : im.layers) layers.push_back(BlobPath(l.digest));
      docker.push_back({{"Config", BlobPath(im.config_digest)},
                        {"RepoTags", {full}},
                        {"Layers", layers}});
      repositories[ref.name][ref.tag] = im.config_digest.hex();
    }
    RETURN_IF_ERROR(AddBytes(tw, "index.json", index.dump()));
    RETURN_IF_ERROR(AddBytes(tw, "manifest.json", docker.dump()));
    RETURN_IF_ERROR(AddBytes(tw, "repositories", repositories.dump()));
    return tw.Finish();
  }();
  bool closed = std::fclose(f) == 0;
  if (!st.ok() || !closed) {
    std::remove(tmp.c_str());
    return st.ok() ? Internal("write " + path) : st;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Internal("rename to " + path + ": " + ec.message());
  return Status::Ok();
}

Status LoadImages(ImageStore& images, const std::string& path,
                  std::ostream& out) {
  Store& store = *images.store();
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (!f) return NotFound("cannot open " + path);
  ByteSource src = [f](char* buf, size_t n) -> Result<size_t> {
    size_t k = std::fread(buf, 1, n, f);
    if (k == 0 && std::ferror(f)) return Internal("read error");
    return k;
  };
  std::map<std::string, std::string> meta;  // small JSON files by path
  std::map<std::string, Digest> files;  // other files: path -> content digest
  Status st = ReadTar(
      Decompressing(src), [&](const TarEntry& e, const auto& read) -> Status {
        if (e.type != TarEntry::kFile) return Status::Ok();
        std::string p = e.path;
        while (p.rfind("./", 0) == 0) p = p.substr(2);
        if (p == "index.json" || p == "manifest.json" || p == "oci-layout" ||
            p == "repositories") {
          if (e.size > (64u << 20)) return InvalidArgument(p + " is too large");
          std::string data(e.size, '\0');
          size_t off = 0;
          while (off < data.size()) {
            ASSIGN_OR_RETURN(size_t n,
                             read(data.data() + off, data.size() - off));
            if (n == 0) break;
            off += n;
          }
          meta[p] = data;
          return Status::Ok();
        }
        // Everything else is content: into the store, under its own digest. A
        // blobs/<alg>/<hex> name must match it.
        ASSIGN_OR_RETURN(auto w, store.NewWriter());
        Hasher h;
        std::vector<char> buf(1 << 20);
        while (true) {
          ASSIGN_OR_RETURN(size_t n, read(buf.data(), buf.size()));
          if (n == 0) break;
          h.Update(buf.data(), n);
          RETURN_IF_ERROR(w->Write(buf.data(), n));
        }
        Digest d = h.Finish();
        if (p.rfind("blobs/sha256/", 0) == 0 && p.substr(13) != d.hex())
          return InvalidArgument(p + " does not hash to its name (" + d.str() +
                                 ")");
        ASSIGN_OR_RETURN(BlobInfo info, w->Commit(d, e.size));
        (void)info;
        files.insert_or_assign(p, d);
        return Status::Ok();
      });
  if (f != stdin) std::fclose(f);
  RETURN_IF_ERROR(st.WithContext(path));
  size_t loaded = 0;
  auto link_and_put = [&](const ImageRef& ref, const ManifestRecord& rec,
                          const std::vector<Digest>& blobs) -> Status {
    for (const auto& b : blobs)
      RETURN_IF_ERROR(
          store.LinkBlob(ref.name, b).WithContext("blob " + b.str()));
    RETURN_IF_ERROR(store.PutManifest(ref.name, rec, ref.tag, blobs, {}));
    out << "Loaded image: " << ref.str() << "\n";
    ++loaded;
    return Status::Ok();
  };
  if (meta.count("index.json")) {
    json idx = json::parse(meta["index.json"], nullptr, false);
    if (idx.is_discarded() || !idx.contains("manifests"))
      return InvalidArgument("index.json is not an image index");
    for (const auto& m : idx["manifests"]) {
      json ann = m.value("annotations", json::object());
      std::string name = ann.value("io.containerd.image.name", "");
      if (name.empty())
        name = ann.value("org.opencontainers.image.ref.name", "");
      name = Normalize(name);
      auto ref = ParseImageRef(name);
      if (name.empty() || !ref.ok() ||
          (name.find(':') == std::string::npos &&
           name.find('/') == std::string::npos)) {
        out << "skipping an image without a name in index.json (ref.name \""
            << name << "\")\n";
        continue;
      }
      auto d = Digest::Parse(m.value("digest", ""));
      if (!d.ok())
        return InvalidArgument("index.json: " + d.status().message());
      ASSIGN_OR_RETURN(std::string content, images.ReadBytes(*d));
      auto parsed = oci::ParseManifest(content, m.value("mediaType", ""));
      if (!parsed.ok())
        return InvalidArgument("manifest " + d->str() + ": " +
                               parsed.status().message());
      if (parsed->is_index) {
        // Keep the host's platform.
        const oci::Descriptor* pick = oci::PickPlatform(*parsed, kHostPlatform);
        if (!pick)
          return NotFound(name + " has no " + kHostPlatform + " image");
        d = pick->digest;
        ASSIGN_OR_RETURN(content, images.ReadBytes(*d));
        parsed = oci::ParseManifest(content, pick->media_type);
        if (!parsed.ok() || parsed->is_index)
          return InvalidArgument("bad platform manifest " + d->str());
      }
      std::vector<Digest> blobs = {parsed->config->digest};
      for (const auto& l : parsed->layers) blobs.push_back(l.digest);
      ManifestRecord rec;
      rec.content = content;
      rec.digest = *d;
      rec.media_type = parsed->media_type;
      RETURN_IF_ERROR(link_and_put(*ref, rec, blobs));
    }
  } else if (meta.count("manifest.json")) {
    json dm = json::parse(meta["manifest.json"], nullptr, false);
    if (dm.is_discarded() || !dm.is_array())
      return InvalidArgument("manifest.json is not a Docker archive manifest");
    for (const auto& e : dm) {
      std::string cfg = e.value("Config", "");
      if (!files.count(cfg))
        return InvalidArgument("manifest.json names a missing config " + cfg);
      Digest cd = files.at(cfg);
      ASSIGN_OR_RETURN(std::string config, images.ReadBytes(cd));
      std::vector<Digest> blobs = {cd};
      json layers = json::array();
      for (const auto& l : e.value("Layers", json::array())) {
        std::string lp = l.get<std::string>();
        if (!files.count(lp))
          return InvalidArgument("manifest.json names a missing layer " + lp);
        Digest ld = files.at(lp);
        ASSIGN_OR_RETURN(BlobInfo bi, store.StatBlob(ld));
        layers.push_back({{"mediaType", SniffLayerType(store, ld)},
                          {"digest", ld.str()},
                          {"size", bi.size}});
        blobs.push_back(ld);
      }
      json manifest = {{"schemaVersion", 2},
                       {"mediaType", oci::kDockerManifest},
                       {"config",
                        {{"mediaType", oci::kDockerConfig},
                         {"digest", cd.str()},
                         {"size", config.size()}}},
                       {"layers", layers}};
      ManifestRecord rec;
      rec.content = manifest.dump();
      rec.digest = Digest::Of(rec.content);
      rec.media_type = std::string(oci::kDockerManifest);
      for (const auto& t : e.value("RepoTags", json::array())) {
        auto ref = ParseImageRef(Normalize(t.get<std::string>()));
        if (!ref.ok())
          return InvalidArgument("manifest.json: " + ref.status().message());
        RETURN_IF_ERROR(link_and_put(*ref, rec, blobs));
      }
    }
  } else {
    return InvalidArgument(path +
                           " is neither an OCI layout (index.json) nor a "
                           "Docker archive (manifest.json)");
  }
  if (loaded == 0) return InvalidArgument(path + " holds no named image");
  return Status::Ok();
}

}  // namespace ocib::image
