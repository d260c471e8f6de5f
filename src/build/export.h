// Build outputs besides the local image store (docker build --output):
// the image's flattened root filesystem as a directory (type=local) or a
// tar file (type=tar), and the image as an OCI layout or Docker archive
// tar (type=oci, type=docker: the `save` format, which holds both).
//
// Errors: kInvalidArgument for a bad --output spec; I/O errors as
// kInternal naming the destination. Thread-compatible.
#pragma once

#include <string>

#include "build/builder.h"
#include "image/image_store.h"

namespace ocib::build {

struct OutputSpec {
  enum class Type { kLocal, kTar, kOci, kDocker } type = Type::kLocal;
  std::string dest;
};

// "type=local,dest=DIR", "type=tar,dest=FILE", "type=oci,dest=FILE",
// "type=docker,dest=FILE", or a bare "DIR" (type=local), as docker build.
Result<OutputSpec> ParseOutputSpec(const std::string& text);

// Writes the image to spec.dest. `ref` names the image in the store.
Status ExportImage(Builder& builder, ImageStore& images, const ImageRef& ref,
                   const OutputSpec& spec);

}  // namespace ocib::build
