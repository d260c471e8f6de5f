#include "image/progress.h"

#include <cstdio>

namespace ocib::image {
namespace {

std::string HumanBytes(double n) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (n >= 1000 && u < 4) {
    n /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", n, units[u]);
  return buf;
}

}  // namespace

std::string HumanSize(uint64_t n) {
  char buf[32];
  if (n < 1000)
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
  else if (n < 1000 * 1000)
    std::snprintf(buf, sizeof buf, "%.1fkB", n / 1e3);
  else if (n < 1000ull * 1000 * 1000)
    std::snprintf(buf, sizeof buf, "%.1fMB", n / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.2fGB", n / 1e9);
  return buf;
}

std::string ProgressBoard::Bar(uint64_t done, uint64_t total, double seconds,
                               int width) {
  int fill = total == 0
                 ? width
                 : static_cast<int>(static_cast<double>(done) / total * width);
  if (fill > width) fill = width;
  std::string bar = "[";
  for (int i = 0; i < width; ++i)
    bar += i < fill ? '=' : (i == fill ? '>' : ' ');
  bar += "] " + HumanBytes(static_cast<double>(done)) + "/" +
         HumanBytes(static_cast<double>(total));
  if (seconds >= 0.001) bar += " " + HumanBytes(done / seconds) + "/s";
  return bar;
}

ProgressBoard::Row& ProgressBoard::RowFor(const std::string& id) {
  for (auto& r : rows_)
    if (r.id == id) return r;
  rows_.push_back({id, "", std::chrono::steady_clock::now()});
  return rows_.back();
}

void ProgressBoard::Redraw() {
  // Move up over the rows drawn last time and draw every row again.
  if (drawn_ > 0) out_ << "\x1b[" << drawn_ << "A";
  for (const auto& r : rows_)
    out_ << "\x1b[2K" << r.id << ": " << r.text << "\n";
  drawn_ = rows_.size();
  out_ << std::flush;
  last_draw_ = std::chrono::steady_clock::now();
}

void ProgressBoard::Status(const std::string& id, const std::string& text) {
  std::lock_guard<std::mutex> l(mu_);
  if (!tty_) {
    if (text != "Waiting") out_ << id << ": " << text << "\n" << std::flush;
    return;
  }
  RowFor(id).text = text;
  Redraw();
}

void ProgressBoard::Bytes(const std::string& id, const std::string& verb,
                          uint64_t done, uint64_t total) {
  if (!tty_) return;
  std::lock_guard<std::mutex> l(mu_);
  Row& r = RowFor(id);
  auto now = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(now - r.started).count();
  r.text = verb + " " + Bar(done, total, secs);
  if (done == total || now - last_draw_ >= std::chrono::milliseconds(100))
    Redraw();
}

void ProgressBoard::Note(const std::string& text) {
  std::lock_guard<std::mutex> l(mu_);
  if (!tty_) {
    out_ << text << "\n" << std::flush;
    return;
  }
  // Notes go above the board: overwrite its first row, then draw it below.
  if (drawn_ > 0) out_ << "\x1b[" << drawn_ << "A";
  out_ << "\x1b[2K" << text << "\n";
  drawn_ = 0;
  Redraw();
}

void ProgressBoard::Final(const std::string& text) {
  std::lock_guard<std::mutex> l(mu_);
  out_ << text << "\n" << std::flush;
  rows_.clear();
  drawn_ = 0;
}

}  // namespace ocib::image
