// Per-blob progress for push and pull, as docker prints it.
//
// On a terminal: one row per blob ("<short digest>: <status>"), redrawn in
// place with a bar, bytes and speed while bytes move (at most every
// 100 ms). Otherwise: one plain line per finished blob and nothing in
// between, so logs stay readable.
//
// Thread-safe: transfers running in parallel report into one board.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

namespace ocib::image {

// A size in docker's units (powers of 1000): "512B", "1.2kB", "3.4MB",
// "1.25GB".
std::string HumanSize(uint64_t n);

class ProgressBoard {
 public:
  ProgressBoard(std::ostream& out, bool tty) : out_(out), tty_(tty) {}

  // Sets a row's status ("Waiting", "Pushed", "Already exists", ...).
  // Without a terminal, statuses other than "Waiting" print as lines.
  void Status(const std::string& id, const std::string& text);
  // Bytes moved so far for a row; verb is "Pushing" or "Downloading".
  void Bytes(const std::string& id, const std::string& verb, uint64_t done,
             uint64_t total);
  // A line above the rows (retries, resumptions).
  void Note(const std::string& text);
  // A line below the rows, after which the board is done (the closing
  // "digest:" and "Status:" lines).
  void Final(const std::string& text);

  // "[=====>    ] 12.3MB/45.6MB 35.2MB/s" (exposed for tests).
  static std::string Bar(uint64_t done, uint64_t total, double seconds,
                         int width = 40);

 private:
  struct Row {
    std::string id, text;
    std::chrono::steady_clock::time_point started;  // row created
  };
  Row& RowFor(const std::string& id);
  void Redraw();  // with mu_ held

  std::mutex mu_;
  std::ostream& out_;
  const bool tty_;
  std::vector<Row> rows_;
  size_t drawn_ = 0;  // rows on screen below the last note
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace ocib::image
