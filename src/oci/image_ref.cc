#include "oci/image_ref.h"

#include <cctype>

#include "oci/reference.h"

namespace ocib::oci {

bool IsRegistryHost(std::string_view c) {
  return c.find('.') != std::string_view::npos ||
         c.find(':') != std::string_view::npos || c == "localhost";
}

std::string Domain(std::string_view name) {
  size_t slash = name.find('/');
  if (slash == std::string_view::npos) return "";
  std::string_view first = name.substr(0, slash);
  return IsRegistryHost(first) ? std::string(first) : std::string();
}

std::string Path(std::string_view name) {
  std::string d = Domain(name);
  return std::string(d.empty() ? name : name.substr(d.size() + 1));
}

std::string ImageRef::str() const {
  std::string s = name;
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->str();
  return s;
}

Result<ImageRef> ParseImageRef(std::string_view text) {
  ImageRef r;
  std::string t(text);
  size_t at = t.find('@');
  if (at != std::string::npos) {
    auto d = Digest::Parse(t.substr(at + 1));
    if (!d.ok())
      return InvalidArgument("invalid reference \"" + t +
                             "\": " + d.status().message());
    r.digest = *d;
    t = t.substr(0, at);
  }
  size_t slash = t.rfind('/');
  size_t colon = t.rfind(':');
  if (colon != std::string::npos &&
      (slash == std::string::npos || colon > slash)) {
    r.tag = t.substr(colon + 1);
    t = t.substr(0, colon);
    if (!ValidTag(r.tag))
      return InvalidArgument("invalid tag \"" + r.tag + "\" in \"" +
                             std::string(text) + "\"");
  }
  std::string host = Domain(t);
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
          c == ':'))
      return InvalidArgument("invalid registry host \"" + host + "\"");
  if (!ValidRepositoryName(Path(t)))
    return InvalidArgument("invalid image name \"" + t +
                           "\": lowercase letters, digits and separators (. _ "
                           "__ -), components joined by /");
  r.name = t;
  if (r.tag.empty() && !r.digest) r.tag = "latest";
  return r;
}

std::string NormalizedName(std::string_view name) {
  if (!Domain(name).empty()) return std::string(name);
  std::string path(name);
  if (path.find('/') == std::string::npos) path = "library/" + path;
  return std::string(kDockerHubDomain) + "/" + path;
}

std::string FamiliarName(std::string_view name) {
  std::string full = NormalizedName(name);
  if (Domain(full) != kDockerHubDomain) return full;
  std::string path = Path(full);
  if (path.rfind("library/", 0) == 0 && path.find('/', 8) == std::string::npos)
    return path.substr(8);
  return path;
}

}  // namespace ocib::oci
