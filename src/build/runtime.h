// Running build steps: overlayfs mounts for image filesystems and an OCI
// runtime (runc by default) to run a process inside them, with a generated
// runtime config: its own mount, PID, UTS and IPC namespaces, the host's
// network (as docker build), Docker's default capabilities, the host's
// /etc/resolv.conf and /etc/hosts mounted read-only, no cgroup resources.
//
// Requires root. Thread-compatible.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace ocib::build {

class OverlayMount {
 public:
  // Mounts at `target` the union of `lowers` (top first; at least one) and,
  // if upper is non-empty, a writable upper (work must be on the same fs).
  static Result<std::unique_ptr<OverlayMount>> Mount(
      const std::vector<std::string>& lowers, const std::string& upper,
      const std::string& work, const std::string& target);
  ~OverlayMount();  // unmounts
  const std::string& path() const { return target_; }

 private:
  std::string target_;
};

// A mount beside the defaults (RUN --mount): an OCI runtime mount entry.
struct ExtraMount {
  std::string destination;  // absolute, inside the container
  std::string type;         // "bind" or "tmpfs"
  std::string source;       // host path (bind), "tmpfs"
  std::vector<std::string> options;
};

struct ProcessSpec {
  std::vector<std::string> args;
  std::vector<ExtraMount> mounts;
  bool network_none = false;  // its own empty network namespace
  int output_fd = -1;         // stdout and stderr go here (-1: inherit)
  std::vector<std::string> env;
  std::string cwd = "/";
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> additional_gids;
};

// Resolves USER ("name", "uid", "name:group", "uid:gid") against the
// rootfs's /etc/passwd and /etc/group. kInvalidArgument for an unknown name.
Status ResolveUser(const std::string& user, const std::string& rootfs,
                   ProcessSpec* spec);

// Runs spec inside rootfs (the stdout/stderr of this process are the
// container's). Returns the exit status. `created` receives the paths
// (relative to rootfs, parents first) of mount points the runtime had to
// create for spec.mounts and the /etc files it binds, so the caller can
// keep them out of the layer. /proc, /dev and /sys are not among them:
// BuildKit leaves those directories in a RUN's layer when it made them.
Result<int> RunContainer(const std::string& runtime,
                         const std::string& state_dir,
                         const std::string& rootfs, const ProcessSpec& spec,
                         std::vector<std::string>* created);

}  // namespace ocib::build
