// Internal to the ocibuild command line: what its command files share.
// Not thread-safe (one command per process).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "build/builder.h"
#include "image/image_store.h"
#include "image/transfer.h"
#include "store/blob_store.h"

namespace ocib::cli {

// One line on stderr ("ocibuild: msg"); returns exit status 1.
int Fail(const std::string& msg);
// The usage text (with a reason first, if given); returns 2.
int Usage(const std::string& why = "");

// The local store a command works on, opened on demand.
struct Ctx {
  std::string root;
  std::unique_ptr<Store> store;
  std::unique_ptr<image::ImageStore> images;
  std::unique_ptr<build::Builder> builder;
  // Commands that only read open a read-only snapshot: no lock (a build may
  // run meanwhile), no recovery, no fsync at open.
  Status Open(bool read_only);
};

// Transfers as the user configured them (~/.config/ocibuild/config.json
// and docker's config.json).
image::TransferOptions UserTransferOptions();

// rmi, image prune, builder prune, system df (prune_command.cc). Opens
// the store itself.
int DiskCommand(Ctx& ctx, const std::string& cmd,
                const std::vector<std::string>& rest);

// `ocibuild build` (build_command.cc).
int Build(Ctx& ctx, std::vector<std::string> args);

}  // namespace ocib::cli
