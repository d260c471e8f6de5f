#include "build/export.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "build/csv_options.h"
#include "build/paths.h"
#include "build/snapshot.h"
#include "build/state_paths.h"
#include "image/archive.h"
#include "image/tar_writer.h"

namespace ocib::build {

namespace fs = std::filesystem;

Result<OutputSpec> ParseOutputSpec(const std::string& text) {
  OutputSpec spec;
  if (text.find('=') == std::string::npos) {
    if (text.empty()) return InvalidArgument("--output needs a destination");
    spec.dest = text;
    return spec;
  }
  std::string type = "local";
  for (const auto& [k, v] : ParseCsvOptions(text)) {
    if (k == "type")
      type = v;
    else if (k == "dest")
      spec.dest = v;
    else
      return InvalidArgument("--output: unknown field \"" + k + "\"");
  }
  if (type == "local")
    spec.type = OutputSpec::Type::kLocal;
  else if (type == "tar")
    spec.type = OutputSpec::Type::kTar;
  else if (type == "oci")
    spec.type = OutputSpec::Type::kOci;
  else if (type == "docker")
    spec.type = OutputSpec::Type::kDocker;
  else
    return InvalidArgument(
        "--output type must be local, tar, oci or docker, got \"" + type +
        "\"");
  if (spec.dest.empty())
    return InvalidArgument("--output type=" + type + " needs dest=");
  return spec;
}

Status ExportImage(Builder& builder, ImageStore& images, const ImageRef& ref,
                   const OutputSpec& spec) {
  if (spec.type == OutputSpec::Type::kOci ||
      spec.type == OutputSpec::Type::kDocker)
    return SaveImages(images, {ref}, spec.dest);
  ASSIGN_OR_RETURN(StoredImage im, images.Get(ref));
  ASSIGN_OR_RETURN(auto lowers,
                   builder.LayerDirs(im.layers, im.image.diff_ids));
  StatePaths paths{builder.state_dir()};
  std::error_code ec;
  if (spec.type == OutputSpec::Type::kLocal) {
    fs::create_directories(spec.dest, ec);
    if (ec) return Internal("--output " + spec.dest + ": " + ec.message());
    return MaterializeLayers(lowers, spec.dest);
  }
  // type=tar: the flattened tree, written as one tar.
  std::string tmp = paths.Tmp() + "/export-" + RandomHex();
  fs::create_directories(tmp, ec);
  Status s = MaterializeLayers(lowers, tmp);
  if (s.ok()) {
    std::ofstream out(spec.dest, std::ios::binary | std::ios::trunc);
    if (!out) {
      s = Internal("--output " + spec.dest + ": cannot create the file");
    } else {
      TarWriter tw([&out](const char* d, size_t n) -> Status {
        out.write(d, static_cast<std::streamsize>(n));
        return out ? Status::Ok() : Internal("write failed");
      });
      s = WriteTree(tmp, tw, TreeOptions{});
      if (s.ok()) s = tw.Finish();
      out.close();
      if (s.ok() && !out)
        s = Internal("--output " + spec.dest + ": write failed");
    }
  }
  fs::remove_all(tmp, ec);
  return s;
}

}  // namespace ocib::build
