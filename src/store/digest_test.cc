#include "store/digest.h"

#include <doctest/doctest.h>

using ocib::Code;
using ocib::Digest;
using ocib::DigestAlgorithm;
using ocib::Hasher;

TEST_CASE("Digest::Parse accepts sha256 and sha512") {
  std::string hex256(64, 'a');
  auto d = Digest::Parse("sha256:" + hex256);
  REQUIRE(d.ok());
  CHECK(d->algorithm() == DigestAlgorithm::kSha256);
  CHECK(d->str() == "sha256:" + hex256);
  auto d5 = Digest::Parse("sha512:" + std::string(128, '0'));
  REQUIRE(d5.ok());
  CHECK(d5->algorithm() == DigestAlgorithm::kSha512);
}

TEST_CASE("Digest::Parse rejects malformed digests") {
  for (const char* bad :
       {"", "sha256", "sha256:", "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:abc",
        "SHA256:"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:"
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "sha256:"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85z",
        "sha256:../../../../etc/"
        "passwd00000000000000000000000000000000000000000",
        "sha512:"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}) {
    auto d = Digest::Parse(bad);
    CHECK_MESSAGE(!d.ok(), bad);
    if (!d.ok()) CHECK(d.status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("Digest::Of matches known vectors") {
  CHECK(Digest::Of("").str() ==
        "sha256:"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Digest::Of("abc").str() ==
        "sha256:"
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Digest::Of("abc", DigestAlgorithm::kSha512).hex().substr(0, 16) ==
        "ddaf35a193617aba");
}

TEST_CASE("Hasher streams in pieces of any size and Peek does not disturb") {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  Hasher h;
  size_t off = 0, step = 1;
  while (off < data.size()) {
    size_t n = std::min(step, data.size() - off);
    h.Update(data.data() + off, n);
    off += n;
    step = step * 3 + 1;
    if (off > 500 && off < 2000)
      CHECK(h.Peek() == Digest::Of(data.substr(0, off)));
  }
  CHECK(h.Finish() == Digest::Of(data));
}

TEST_CASE("Hasher state saved in one hasher resumes in another") {
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = char(i * 2654435761u >> 13);
  for (auto a : {DigestAlgorithm::kSha256, DigestAlgorithm::kSha512}) {
    CAPTURE(int(a));
    for (size_t cut : {size_t(0), size_t(1), size_t(63), size_t(64),
                       size_t(1000003), data.size()}) {
      CAPTURE(cut);
      Hasher first(a);
      first.Update(data.data(), cut);
      std::string state = first.SaveState();
      Hasher second(a);
      second.Update("unrelated", 9);
      REQUIRE(second.LoadState(state));
      second.Update(data.data() + cut, data.size() - cut);
      CHECK(second.Finish() == Digest::Of(data, a));
    }
  }
  // Anything else is refused and leaves the hasher as it was.
  Hasher h;
  h.Update("ab", 2);
  Hasher other(DigestAlgorithm::kSha512);
  CHECK(!h.LoadState(other.SaveState()));
  CHECK(!h.LoadState(""));
  std::string s = h.SaveState();
  CHECK(!h.LoadState(s.substr(0, s.size() - 1)));
  s[0] = 'x';
  CHECK(!h.LoadState(s));
  h.Update("c", 1);
  CHECK(h.Finish() == Digest::Of("abc"));
}
