// Media types of the OCI image spec and Docker's image manifest v2.
#pragma once

#include <string_view>

namespace ocib::oci {

inline constexpr std::string_view kOciManifest =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex =
    "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig =
    "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciEmpty =
    "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view kOciLayerTar =
    "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd =
    "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig =
    "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerForeignLayer =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

// True for layer types that registries do not hold (Docker foreign layers,
// OCI non-distributable layers): a manifest may reference them without the
// blob being present.
bool IsNonDistributable(std::string_view media_type);

// True for the four manifest types the registry accepts.
bool IsManifestType(std::string_view media_type);
bool IsIndexType(std::string_view media_type);

}  // namespace ocib::oci
