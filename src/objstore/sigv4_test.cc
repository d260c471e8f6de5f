// SigV4 against AWS's published examples (the S3 "GET object with a
// Range" example of the SigV4 header documentation, the query-string
// presign example, and the get-vanilla case of the SigV4 test suite).
#include "objstore/sigv4.h"

#include <doctest/doctest.h>

using namespace ocib::objstore;

TEST_CASE("S3 documentation example: GET /test.txt with Range") {
  SigV4Credentials c{"AKIAIOSFODNN7EXAMPLE",
                     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1",
                     "s3"};
  SigV4Request r;
  r.method = "GET";
  r.path = "/test.txt";
  r.payload_hash = Sha256Hex("", 0);
  r.headers = {{"host", "examplebucket.s3.amazonaws.com"},
               {"range", "bytes=0-9"},
               {"x-amz-content-sha256", r.payload_hash},
               {"x-amz-date", "20130524T000000Z"}};
  CHECK(SignV4(c, r, "20130524T000000Z") ==
        "AWS4-HMAC-SHA256 "
        "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature="
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  // A changed byte anywhere changes the signature.
  r.headers["range"] = "bytes=0-8";
  CHECK(SignV4(c, r, "20130524T000000Z").find("f0e8bdb87c") ==
        std::string::npos);
}

TEST_CASE("S3 documentation example: presigned GET of /test.txt") {
  SigV4Credentials c{"AKIAIOSFODNN7EXAMPLE",
                     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1",
                     "s3"};
  std::string q = PresignV4(c, "GET", "examplebucket.s3.amazonaws.com",
                            "/test.txt", "20130524T000000Z", 86400);
  CHECK(q ==
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
        "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"
        "X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-"
        "SignedHeaders=host&X-Amz-Signature="
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

// The suite's expected header separates its parts with ", "; S3 takes
// either, and the signature is the same.
TEST_CASE("SigV4 test suite: get-vanilla") {
  SigV4Credentials c{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                     "us-east-1", "service"};
  SigV4Request r;
  r.method = "GET";
  r.path = "/";
  r.payload_hash = Sha256Hex("", 0);
  r.headers = {{"host", "example.amazonaws.com"},
               {"x-amz-date", "20150830T123600Z"}};
  CHECK(SignV4(c, r, "20150830T123600Z") ==
        "AWS4-HMAC-SHA256 "
        "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,"
        "SignedHeaders=host;x-amz-date,"
        "Signature="
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST_CASE("URI encoding and dates") {
  CHECK(UriEncode("a b/c~d_e.f-g", true) == "a%20b/c~d_e.f-g");
  CHECK(UriEncode("a/b+c=", false) == "a%2Fb%2Bc%3D");
  CHECK(UriEncode("\xe1\x88\xb4", true) == "%E1%88%B4");
  CHECK(AmzDate(1369353600) == "20130524T000000Z");
}
