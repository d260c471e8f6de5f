#include "store/keys.h"

namespace ocib::keys {
namespace {
std::string Kind(char k, std::string_view rest) {
  std::string s(1, k);
  s.append(rest);
  return s;
}
std::string InRepo(char k, const std::string& repo, std::string_view rest) {
  std::string s(1, k);
  s.append(repo);
  s.push_back('\0');
  s.append(rest);
  return s;
}
}  // namespace

std::string Schema() { return "S"; }
std::string Probe() { return "H"; }
std::string Blob(const Digest& d) { return Kind(kBlobKind, d.str()); }
std::string Pending(const Digest& d) { return Kind(kPendingKind, d.str()); }
std::string Inline(const Digest& d) { return Kind(kInlineKind, d.str()); }
std::string Unreferenced(const Digest& d) {
  return Kind(kUnreferencedKind, d.str());
}
std::string Upload(const std::string& id) { return Kind(kUploadKind, id); }
std::string HashState(const std::string& id) {
  return Kind(kHashStateKind, id);
}
std::string Repo(const std::string& repo) { return Kind(kRepoKind, repo); }
std::string LinkPrefix(const std::string& repo) {
  return InRepo('l', repo, "");
}
std::string Link(const std::string& repo, const Digest& d) {
  return InRepo('l', repo, d.str());
}
std::string ManifestPrefix(const std::string& repo) {
  return InRepo('m', repo, "");
}
std::string Manifest(const std::string& repo, const Digest& d) {
  return InRepo('m', repo, d.str());
}
std::string TagTime(const std::string& repo, const std::string& tag) {
  return InRepo('T', repo, tag);
}
std::string TagPrefix(const std::string& repo) { return InRepo('t', repo, ""); }
std::string Tag(const std::string& repo, const std::string& tag) {
  return InRepo('t', repo, tag);
}
std::string ReferrerPrefix(const std::string& repo, const Digest& subject) {
  std::string s = InRepo('f', repo, subject.str());
  s.push_back('\0');
  return s;
}
std::string Referrer(const std::string& repo, const Digest& subject,
                     const Digest& d) {
  return ReferrerPrefix(repo, subject) + d.str();
}

Encoder& Encoder::U64(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  return *this;
}

Encoder& Encoder::Str(std::string_view s) {
  U64(s.size());
  out_.append(s);
  return *this;
}

bool Decoder::U64(uint64_t* v) {
  if (in_.size() < 8) return false;
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i)
    r |= static_cast<uint64_t>(static_cast<unsigned char>(in_[i])) << (8 * i);
  *v = r;
  in_.remove_prefix(8);
  return true;
}

bool Decoder::Str(std::string* s) {
  uint64_t n;
  if (!U64(&n) || in_.size() < n) return false;
  s->assign(in_.substr(0, n));
  in_.remove_prefix(n);
  return true;
}

std::string QueuePrefix(const std::string& queue) {
  return std::string(1, kQueueKind) + queue + std::string(1, '\0');
}

std::string QueueEntry(const std::string& queue, uint64_t seq) {
  std::string k = QueuePrefix(queue);
  for (int i = 7; i >= 0; --i) k += static_cast<char>((seq >> (8 * i)) & 0xff);
  return k;
}

}  // namespace ocib::keys
