#include "build/workspace.h"

#include <cstdlib>
#include <filesystem>

namespace ocib::build {

namespace fs = std::filesystem;

Result<std::unique_ptr<Workspace>> Workspace::Create(
    const std::vector<std::string>& lowers, const std::string& dir,
    std::ostream& note) {
  std::unique_ptr<Workspace> w(new Workspace());
  w->dir_ = dir;
  w->upper_ = dir + "/upper";
  std::string work = dir + "/work", merged = dir + "/merged";
  for (const auto& d : {w->upper_, work, merged}) fs::create_directories(d);
  const char* mode = std::getenv("OCIBUILD_SNAPSHOTTER");
  bool copy = mode && std::string(mode) == "copy";
  if (!copy) {
    auto m = OverlayMount::Mount(lowers, w->upper_, work, merged);
    if (m.ok()) {
      w->mount_ = std::move(*m);
      w->rootfs_ = merged;
      return w;
    }
    note << " ---> overlayfs unavailable (" << m.status().message()
         << "): copying layers instead\n";
  }
  w->rootfs_ = dir + "/rootfs";
  RETURN_IF_ERROR(MaterializeLayers(lowers, w->rootfs_));
  ASSIGN_OR_RETURN(TreeSnapshot snap, TreeSnapshot::Take(w->rootfs_));
  w->snapshot_ = std::move(snap);
  return w;
}

Status Workspace::Finish(const std::vector<std::string>& stubs) {
  mount_.reset();
  std::string base = snapshot_ ? rootfs_ : upper_;
  for (auto it = stubs.rbegin(); it != stubs.rend(); ++it) {
    std::string p = base + "/" + *it;
    std::error_code ec;
    if (fs::is_regular_file(p, ec) && fs::file_size(p, ec) == 0)
      fs::remove(p, ec);
  }
  if (snapshot_) {
    std::error_code ec;
    fs::remove_all(upper_, ec);
    return snapshot_->Diff(rootfs_, upper_);
  }
  return Status::Ok();
}

}  // namespace ocib::build
