// PostgreSQL Index over libpq. See pg_index.h.
#include "pgindex/pg_index.h"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace ocib::pgindex {
namespace {

// Migrations, in order; migration i (from 1) brings the schema to version
// i. Never edit one that has shipped: add the next.
const char* const kMigrations[] = {
    // 1: the store's records (store/keys.h), one row per key.
    "CREATE TABLE ocib_index (k bytea PRIMARY KEY, v bytea NOT NULL)",
};
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// Replicas starting together take this lock to migrate one at a time.
constexpr int64_t kMigrateLockKey = (0x6f636962ll << 32) - 1;

std::string OneLine(const char* s) {
  std::string out;
  for (; s && *s; ++s) {
    char c = *s;
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) continue;
    out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string HexArrayElement(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"\\\\x";
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  out.push_back('"');
  return out;
}

// A text-format array literal of bytea values.
std::string ByteaArray(const std::vector<std::string_view>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    out += HexArrayElement(items[i]);
  }
  out.push_back('}');
  return out;
}

std::string BigintArray(const std::vector<uint64_t>& keys) {
  std::string out = "{";
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i) out.push_back(',');
    out += std::to_string(static_cast<int64_t>(keys[i]));
  }
  out.push_back('}');
  return out;
}

// A query parameter: bytes sent in binary (bytea) or text.
struct Param {
  std::string_view data;
  bool binary;
};

class PgResult {
 public:
  explicit PgResult(PGresult* r = nullptr) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  ~PgResult() {
    if (r_) PQclear(r_);
  }
  PGresult* get() const { return r_; }
  int rows() const { return PQntuples(r_); }
  std::string_view at(int row, int col) const {
    return std::string_view(PQgetvalue(r_, row, col),
                            static_cast<size_t>(PQgetlength(r_, row, col)));
  }

 private:
  PGresult* r_;
};

// Runs one statement; binary results. kUnreachable when the connection is
// gone (the caller resets it), kInternal for a failed statement.
Result<PgResult> Exec(PGconn* c, const char* sql,
                      const std::vector<Param>& params = {}) {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  std::vector<std::string> text;  // text params need a terminating NUL
  text.reserve(params.size());
  for (const auto& p : params) {
    if (p.binary) {
      values.push_back(p.data.data());
    } else {
      text.emplace_back(p.data);
      values.push_back(text.back().c_str());
    }
    lengths.push_back(static_cast<int>(p.data.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  PgResult r(PQexecParams(c, sql, static_cast<int>(params.size()), nullptr,
                          values.data(), lengths.data(), formats.data(), 1));
  if (PQstatus(c) == CONNECTION_BAD)
    return Unreachable("cannot reach PostgreSQL");
  if (!r.get()) return Internal("database error");
  auto st = PQresultStatus(r.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::fprintf(stderr, "ocib index: postgresql: %s\n",
                 OneLine(PQresultErrorMessage(r.get())).c_str());
    return Internal("database error");
  }
  return r;
}

bool ValidSchemaName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return !(s[0] >= '0' && s[0] <= '9');
}

}  // namespace

int SchemaVersion() { return kSchemaVersion; }

namespace {

class PgIndex;

// A pooled connection, returned to the pool when destroyed.
class Conn {
 public:
  Conn(PgIndex* idx, PGconn* c) : idx_(idx), c_(c) {}
  Conn(Conn&& o) noexcept : idx_(o.idx_), c_(o.c_) { o.c_ = nullptr; }
  Conn& operator=(Conn&&) = delete;
  ~Conn();
  PGconn* get() const { return c_; }

 private:
  PgIndex* idx_;
  PGconn* c_;
};

class PgIndex : public Index {
 public:
  explicit PgIndex(PgIndexOptions o) : o_(std::move(o)) {}
  ~PgIndex() override {
    for (PGconn* c : idle_) PQfinish(c);
    if (lock_conn_) PQfinish(lock_conn_);
  }

  // A new connection with the session settings every one needs.
  Result<PGconn*> Connect() {
    std::string timeout =
        std::to_string(std::max(1, o_.connect_timeout_seconds));
    const char* keys[] = {"dbname", "connect_timeout", "application_name",
                          nullptr};
    const char* vals[] = {o_.conninfo.c_str(), timeout.c_str(), "ocireg",
                          nullptr};
    // expand_dbname: the first dbname is the whole connection string.
    PGconn* c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
      std::string msg = c ? OneLine(PQerrorMessage(c)) : "out of memory";
      if (c) PQfinish(c);
      return Unreachable("cannot connect to PostgreSQL: " + msg);
    }
    // Notices ("already exists, skipping") are not errors: not printed.
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
    std::string set = "SET search_path TO \"" + schema_ + "\"";
    Status s = Exec(c, set.c_str()).status();
    if (s.ok() && o_.read_only)
      s = Exec(c, "SET default_transaction_read_only = on").status();
    if (!s.ok()) {
      PQfinish(c);
      return s;
    }
    return c;
  }

  Result<Conn> Acquire() {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] {
        return !idle_.empty() || open_ < std::max(1, o_.pool_size);
      });
      if (!idle_.empty()) {
        PGconn* c = idle_.back();
        idle_.pop_back();
        return Conn(this, c);
      }
      ++open_;
    }
    auto c = Connect();
    if (!c.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      --open_;
      cv_.notify_one();
      return c.status();
    }
    return Conn(this, *c);
  }

  void Return(PGconn* c) {
    std::lock_guard<std::mutex> l(mu_);
    if (PQstatus(c) != CONNECTION_OK ||
        PQtransactionStatus(c) != PQTRANS_IDLE) {
      PQfinish(c);  // broken, or left inside a transaction: not reused
      --open_;
    } else {
      idle_.push_back(c);
    }
    cv_.notify_one();
  }

  // Runs one autocommit statement on a pooled connection; once more on a
  // new connection if the pooled one had died (every statement here is
  // idempotent). A dead connection means the server went away: the other
  // idle ones are dropped too, as they died with it.
  Result<PgResult> Run(const char* sql, const std::vector<Param>& params) {
    for (int attempt = 0;; ++attempt) {
      ASSIGN_OR_RETURN(Conn c, Acquire());
      auto r = Exec(c.get(), sql, params);
      if (r.ok() || r.status().code() != Code::kUnreachable || attempt == 1)
        return r;
      DropIdle();
    }
  }

  void DropIdle() {
    std::lock_guard<std::mutex> l(mu_);
    for (PGconn* c : idle_) PQfinish(c);
    open_ -= static_cast<int>(idle_.size());
    idle_.clear();
    cv_.notify_all();
  }

  Status Migrate() {
    if (!ValidSchemaName(schema_))
      return InvalidArgument("database schema name must be [a-z_][a-z0-9_]*");
    ASSIGN_OR_RETURN(Conn c, Acquire());
    PGconn* pc = c.get();
    std::string lock_key = std::to_string(kMigrateLockKey);
    RETURN_IF_ERROR(
        Exec(pc, "SELECT pg_advisory_lock($1::bigint)", {{lock_key, false}})
            .status());
    Status st = MigrateLocked(pc);
    Status un =
        Exec(pc, "SELECT pg_advisory_unlock($1::bigint)", {{lock_key, false}})
            .status();
    RETURN_IF_ERROR(st);
    return un;
  }

  // A read-only open migrates nothing: the schema must be there already,
  // and not newer than this binary's.
  Status CheckReadOnly() {
    if (!ValidSchemaName(schema_))
      return InvalidArgument("database schema name must be [a-z_][a-z0-9_]*");
    ASSIGN_OR_RETURN(Conn c, Acquire());
    ASSIGN_OR_RETURN(
        PgResult r,
        Exec(c.get(),
             "SELECT to_regclass('ocib_schema_migrations') IS NOT NULL "
             "AND to_regclass('ocib_index') IS NOT NULL"));
    if (r.rows() != 1 || r.at(0, 0) != std::string_view("\x01", 1))
      return NotFound("no store in database schema " + schema_);
    return AppliedVersion(c.get()).status();
  }

  // The newest migration applied; kFailedPrecondition when it is newer
  // than this binary's.
  Result<int> AppliedVersion(PGconn* c) {
    ASSIGN_OR_RETURN(PgResult r,
                     Exec(c,
                          "SELECT coalesce(max(version), 0)::text FROM "
                          "ocib_schema_migrations"));
    // Binary results: the text cast keeps this a plain decimal string.
    int have = std::stoi(std::string(r.at(0, 0)));
    if (have > kSchemaVersion)
      return FailedPrecondition(
          "the database's schema is version " + std::to_string(have) +
          ", newer than this binary's (" + std::to_string(kSchemaVersion) +
          "): upgrade ocireg");
    return have;
  }

  Status MigrateLocked(PGconn* c) {
    std::string create = "CREATE SCHEMA IF NOT EXISTS \"" + schema_ + "\"";
    RETURN_IF_ERROR(Exec(c, create.c_str()).status());
    RETURN_IF_ERROR(Exec(c,
                         "CREATE TABLE IF NOT EXISTS ocib_schema_migrations ("
                         "version integer PRIMARY KEY, "
                         "applied_at timestamptz NOT NULL DEFAULT now())")
                        .status());
    ASSIGN_OR_RETURN(int have, AppliedVersion(c));
    for (int v = have + 1; v <= kSchemaVersion; ++v) {
      RETURN_IF_ERROR(Exec(c, "BEGIN").status());
      Status s = Exec(c, kMigrations[v - 1]).status();
      if (s.ok())
        s = Exec(c, "INSERT INTO ocib_schema_migrations (version) VALUES ($1)",
                 {{std::to_string(v), false}})
                .status();
      if (s.ok()) s = Exec(c, "COMMIT").status();
      if (!s.ok()) {
        Exec(c, "ROLLBACK").status().IgnoreError();
        return s.WithContext("schema migration " + std::to_string(v));
      }
      std::fprintf(stderr, "ocib index: applied schema migration %d\n", v);
    }
    return Status::Ok();
  }

  Status Open(const std::string& schema) {
    schema_ = schema;
    RETURN_IF_ERROR(o_.read_only ? CheckReadOnly() : Migrate());
    auto c = Connect();
    if (!c.ok()) return c.status();
    lock_conn_ = *c;
    return Status::Ok();
  }

  // --- Index ---
  Status Get(std::string_view key, std::string* value) override {
    ASSIGN_OR_RETURN(PgResult r, Run("SELECT v FROM ocib_index WHERE k = $1",
                                     {{key, true}}));
    if (r.rows() == 0) return NotFound("no such key");
    value->assign(r.at(0, 0));
    return Status::Ok();
  }

  Status Write(const IndexBatch& batch, bool) override {
    if (batch.Count() == 0) return Status::Ok();
    // The batch's final state per key: later operations win.
    std::map<std::string_view, const IndexBatch::Op*> last;
    for (const auto& op : batch.ops()) last[op.key] = &op;
    std::vector<std::string_view> dels, put_keys, put_values;
    for (const auto& [k, op] : last) {
      if (op->put) {
        put_keys.push_back(k);
        put_values.push_back(op->value);
      } else {
        dels.push_back(k);
      }
    }
    if (dels.empty() && put_keys.size() == 1)
      return Run("INSERT INTO ocib_index (k, v) VALUES ($1, $2) "
                 "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                 {{put_keys[0], true}, {put_values[0], true}})
          .status();
    if (put_keys.empty() && dels.size() == 1)
      return Run("DELETE FROM ocib_index WHERE k = $1", {{dels[0], true}})
          .status();
    std::string d = ByteaArray(dels), k = ByteaArray(put_keys),
                v = ByteaArray(put_values);
    return Run("WITH gone AS (DELETE FROM ocib_index WHERE k = "
               "ANY($1::bytea[])) "
               "INSERT INTO ocib_index (k, v) "
               "SELECT * FROM unnest($2::bytea[], $3::bytea[]) "
               "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
               {{d, false}, {k, false}, {v, false}})
        .status();
  }

  Status Sync() override { return Status::Ok(); }

  std::unique_ptr<IndexIterator> NewIterator(
      std::string_view prefix, const IndexSnapshot* snapshot) override;
  Result<std::unique_ptr<IndexSnapshot>> GetSnapshot() override;

  Result<std::unique_ptr<IndexLock>> Lock(std::vector<uint64_t> keys) override;
  Result<std::unique_ptr<IndexLock>> TryLock(uint64_t key) override;
  bool Shared() const override { return true; }
  std::string Name() const override { return "postgresql"; }
  uint64_t SizeBytes() override {
    auto r = Run("SELECT pg_total_relation_size('ocib_index')::text", {});
    return r.ok() && r->rows() == 1 ? std::stoull(std::string(r->at(0, 0))) : 0;
  }

  // For the lock type: tries every key on the lock connection; on a partial
  // success gives back what it took. *all: whether every key was taken.
  Status TryAll(const std::vector<uint64_t>& keys, bool* all, uint64_t* gen);
  void UnlockAll(const std::vector<uint64_t>& keys, uint64_t gen);

 private:
  // A lost lock connection is made again; locks it held are gone.
  Status LockConnReady() {
    if (lock_conn_ && PQstatus(lock_conn_) == CONNECTION_OK)
      return Status::Ok();
    if (lock_conn_) PQfinish(lock_conn_);
    lock_conn_ = nullptr;
    ++lock_gen_;
    ASSIGN_OR_RETURN(lock_conn_, Connect());
    return Status::Ok();
  }

  const PgIndexOptions o_;
  std::string schema_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PGconn*> idle_;
  int open_ = 0;

  std::mutex lock_mu_;  // guards lock_conn_ and lock_gen_
  PGconn* lock_conn_ = nullptr;
  uint64_t lock_gen_ = 0;  // bumped when lock_conn_ is made again
};

Conn::~Conn() {
  if (c_) idx_->Return(c_);
}

class PgSnapshot : public IndexSnapshot {
 public:
  explicit PgSnapshot(Conn c) : c_(std::move(c)) {}
  ~PgSnapshot() override { Exec(c_.get(), "COMMIT").status().IgnoreError(); }
  PGconn* conn() const { return c_.get(); }

 private:
  Conn c_;
};

class PgIterator : public IndexIterator {
 public:
  PgIterator(PgIndex* idx, std::string_view prefix, const PgSnapshot* snap)
      : idx_(idx), snap_(snap), prefix_(prefix), end_(IndexPrefixEnd(prefix)) {}

  void Seek(std::string_view target) override {
    if (target < prefix_) target = prefix_;
    page_size_ = 64;
    Fetch(target, /*inclusive=*/true);
  }
  bool Valid() const override { return status_.ok() && pos_ < rows_.size(); }
  void Next() override {
    if (++pos_ < rows_.size() || exhausted_ || !status_.ok()) return;
    std::string after = rows_.back().first;
    page_size_ = std::min<size_t>(page_size_ * 2, 1024);
    Fetch(after, /*inclusive=*/false);
  }
  std::string_view key() const override { return rows_[pos_].first; }
  std::string_view value() const override { return rows_[pos_].second; }
  Status status() const override { return status_; }

 private:
  // One bounded scan: up to page_size_ keys from `from` within the prefix.
  void Fetch(std::string_view from, bool inclusive) {
    rows_.clear();
    pos_ = 0;
    std::string sql = std::string("SELECT k, v FROM ocib_index WHERE k ") +
                      (inclusive ? ">=" : ">") + " $1";
    std::vector<Param> params{{from, true}};
    std::string limit = std::to_string(page_size_);
    if (!end_.empty()) {
      sql += " AND k < $2 ORDER BY k LIMIT $3";
      params.push_back({end_, true});
    } else {
      sql += " ORDER BY k LIMIT $2";
    }
    params.push_back({limit, false});
    auto r = snap_ ? Exec(snap_->conn(), sql.c_str(), params)
                   : idx_->Run(sql.c_str(), params);
    if (!r.ok()) {
      status_ = r.status();
      exhausted_ = true;
      return;
    }
    status_ = Status::Ok();
    for (int i = 0; i < r->rows(); ++i)
      rows_.emplace_back(std::string(r->at(i, 0)), std::string(r->at(i, 1)));
    exhausted_ = rows_.size() < page_size_;
  }

  PgIndex* idx_;
  const PgSnapshot* snap_;
  std::string prefix_, end_;
  std::vector<std::pair<std::string, std::string>> rows_;
  size_t pos_ = 0;
  size_t page_size_ = 64;
  bool exhausted_ = true;
  Status status_;
};

std::unique_ptr<IndexIterator> PgIndex::NewIterator(
    std::string_view prefix, const IndexSnapshot* snapshot) {
  return std::make_unique<PgIterator>(this, prefix,
                                      static_cast<const PgSnapshot*>(snapshot));
}

Result<std::unique_ptr<IndexSnapshot>> PgIndex::GetSnapshot() {
  ASSIGN_OR_RETURN(Conn c, Acquire());
  // The snapshot is fixed by the first statement of the transaction.
  RETURN_IF_ERROR(
      Exec(c.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
          .status());
  RETURN_IF_ERROR(Exec(c.get(), "SELECT 1").status());
  return std::unique_ptr<IndexSnapshot>(new PgSnapshot(std::move(c)));
}

class PgLock : public IndexLock {
 public:
  PgLock(PgIndex* idx, std::vector<uint64_t> keys, uint64_t gen)
      : idx_(idx), keys_(std::move(keys)), gen_(gen) {}
  ~PgLock() override { idx_->UnlockAll(keys_, gen_); }

 private:
  PgIndex* idx_;
  std::vector<uint64_t> keys_;
  uint64_t gen_;
};

Status PgIndex::TryAll(const std::vector<uint64_t>& keys, bool* all,
                       uint64_t* gen) {
  std::lock_guard<std::mutex> l(lock_mu_);
  std::string arr = BigintArray(keys);
  Result<PgResult> tried = Unreachable("cannot reach PostgreSQL");
  for (int attempt = 0; attempt < 2; ++attempt) {
    RETURN_IF_ERROR(LockConnReady());
    *gen = lock_gen_;
    tried = Exec(lock_conn_,
                 "SELECT k::text, pg_try_advisory_lock(k)::text "
                 "FROM unnest($1::bigint[]) AS k",
                 {{arr, false}});
    // A connection that died with its server (a restart): once more on a
    // new one; the locks it held are gone with it.
    if (tried.ok() || tried.status().code() != Code::kUnreachable) break;
  }
  ASSIGN_OR_RETURN(PgResult r, std::move(tried));
  std::vector<uint64_t> taken;
  for (int i = 0; i < r.rows(); ++i)
    if (r.at(i, 1) == "true")
      taken.push_back(
          static_cast<uint64_t>(std::stoll(std::string(r.at(i, 0)))));
  *all = taken.size() == keys.size();
  if (!*all && !taken.empty()) {
    std::string back = BigintArray(taken);
    RETURN_IF_ERROR(Exec(lock_conn_,
                         "SELECT pg_advisory_unlock(k) FROM "
                         "unnest($1::bigint[]) AS k",
                         {{back, false}})
                        .status());
  }
  return Status::Ok();
}

void PgIndex::UnlockAll(const std::vector<uint64_t>& keys, uint64_t gen) {
  std::lock_guard<std::mutex> l(lock_mu_);
  if (gen != lock_gen_ || !lock_conn_) return;  // went with its connection
  std::string arr = BigintArray(keys);
  Exec(lock_conn_,
       "SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) AS k",
       {{arr, false}})
      .status()
      .IgnoreError();
}

Result<std::unique_ptr<IndexLock>> PgIndex::Lock(std::vector<uint64_t> keys) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  auto wait = std::chrono::microseconds(200);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    bool all = false;
    uint64_t gen = 0;
    RETURN_IF_ERROR(TryAll(keys, &all, &gen));
    if (all) return std::unique_ptr<IndexLock>(new PgLock(this, keys, gen));
    if (std::chrono::steady_clock::now() > deadline)
      return Unavailable("index lock held by another replica for over 60 s");
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, std::chrono::microseconds(20000));
  }
}

Result<std::unique_ptr<IndexLock>> PgIndex::TryLock(uint64_t key) {
  bool all = false;
  uint64_t gen = 0;
  RETURN_IF_ERROR(TryAll({key}, &all, &gen));
  if (!all) return Unavailable("locked by another replica");
  return std::unique_ptr<IndexLock>(new PgLock(this, {key}, gen));
}

}  // namespace

Result<std::unique_ptr<Index>> OpenPgIndex(const PgIndexOptions& options) {
  auto idx = std::make_unique<PgIndex>(options);
  RETURN_IF_ERROR(
      idx->Open(options.schema.empty() ? "public" : options.schema));
  return std::unique_ptr<Index>(std::move(idx));
}

}  // namespace ocib::pgindex
