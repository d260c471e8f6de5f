#include "registry/notifications.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "auth/acl.h"
#include "client/url_fetch.h"

namespace ocib::registry {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string Uuid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // variant 1
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                "%02x%02x%02x%02x%02x%02x",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

// RFC 3339 with nanoseconds, UTC.
std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                now.time_since_epoch())
                .count();
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof out, "%s.%09lldZ", buf,
                static_cast<long long>(ns % 1000000000));
  return out;
}

std::string QueueName(const NotificationEndpoint& ep) {
  return "notify/" + ep.name;
}

}  // namespace

struct Notifier::Sender {
  NotificationEndpoint ep;
  std::string queue;
  std::thread thread;
  std::atomic<uint64_t> delivered{0}, failures{0}, dropped{0};
  std::atomic<int64_t> pending{0};  // counted at Start, then kept
};

std::string EventJson(const Event& e, const std::string& id,
                      const std::string& timestamp,
                      const std::string& source_addr,
                      const std::string& instance_id) {
  json target = json::object();
  if (!e.media_type.empty()) target["mediaType"] = e.media_type;
  if (e.size >= 0) {
    target["size"] = e.size;
    target["length"] = e.size;
  }
  if (!e.digest.empty()) target["digest"] = e.digest;
  target["repository"] = e.repository;
  if (!e.from_repository.empty()) target["fromRepository"] = e.from_repository;
  if (!e.url.empty()) target["url"] = e.url;
  if (!e.tag.empty()) target["tag"] = e.tag;
  json actor = json::object();
  if (!e.actor.empty()) actor["name"] = e.actor;
  json j = {{"id", id},
            {"timestamp", timestamp},
            {"action", e.action},
            {"target", target},
            {"request",
             {{"id", Uuid()},
              {"addr", e.request_addr},
              {"host", e.request_host},
              {"method", e.request_method},
              {"useragent", e.user_agent}}},
            {"actor", actor},
            {"source", {{"addr", source_addr}, {"instanceID", instance_id}}}};
  // Names and agents are client-supplied: invalid UTF-8 is replaced, not
  // thrown on.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Notifier::Notifier(std::vector<NotificationEndpoint> endpoints, Store* store,
                   std::string source_addr)
    : store_(store),
      source_addr_(std::move(source_addr)),
      instance_id_(Uuid()) {
  for (auto& ep : endpoints) {
    if (ep.disabled) continue;
    auto s = std::make_unique<Sender>();
    s->queue = QueueName(ep);
    s->ep = std::move(ep);
    senders_.push_back(std::move(s));
  }
}

Notifier::~Notifier() { Stop(); }

bool Notifier::Accepts(const NotificationEndpoint& ep, const Event& e) const {
  auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  if (has(ep.ignored_actions, e.action)) return false;
  if (!e.media_type.empty() && has(ep.ignored_media_types, e.media_type))
    return false;
  if (!ep.actions.empty() && !has(ep.actions, e.action)) return false;
  if (!ep.repositories.empty() &&
      std::none_of(ep.repositories.begin(), ep.repositories.end(),
                   [&](const std::string& g) {
                     return auth::GlobMatch(g, e.repository);
                   }))
    return false;
  return true;
}

Status Notifier::Emit(const Event& e) {
  std::vector<std::pair<std::string, std::string>> entries;
  std::string payload;
  std::vector<Sender*> taking;
  for (const auto& s : senders_) {
    if (!Accepts(s->ep, e)) continue;
    if (s->pending.load() >= s->ep.max_pending) {
      if (s->dropped++ % 1000 == 0)
        std::fprintf(stderr,
                     "ocireg: notifications: endpoint %s has %lld events "
                     "waiting (max_pending); new ones are dropped\n",
                     s->ep.name.c_str(),
                     static_cast<long long>(s->pending.load()));
      continue;
    }
    taking.push_back(s.get());
    // One id per event: the same JSON goes to every endpoint.
    if (payload.empty())
      payload = EventJson(e, Uuid(), Timestamp(), source_addr_, instance_id_);
    entries.emplace_back(s->queue, payload);
  }
  if (entries.empty()) return Status::Ok();
  RETURN_IF_ERROR(store_->Append(entries));
  for (Sender* s : taking) ++s->pending;
  {
    MutexLock l(&mu_);
    ++emitted_;
  }
  cv_.SignalAll();
  return Status::Ok();
}

void Notifier::Start() {
  for (auto& s : senders_) {
    auto n = store_->QueueLength(s->queue);
    s->pending = n.ok() ? static_cast<int64_t>(*n) : 0;
    Sender* raw = s.get();
    s->thread = std::thread([this, raw] { Run(raw); });
  }
}

void Notifier::Stop() {
  {
    MutexLock l(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  for (auto& s : senders_)
    if (s->thread.joinable()) s->thread.join();
}

std::vector<Notifier::EndpointStats> Notifier::stats() const {
  std::vector<EndpointStats> out;
  for (const auto& s : senders_) {
    EndpointStats st;
    st.name = s->ep.name;
    st.pending = static_cast<uint64_t>(std::max<int64_t>(0, s->pending.load()));
    st.delivered = s->delivered.load();
    st.failures = s->failures.load();
    st.dropped = s->dropped.load();
    out.push_back(std::move(st));
  }
  return out;
}

void Notifier::Run(Sender* s) {
  int64_t backoff_ms = s->ep.backoff_seconds * 1000;
  // Waits up to ms, or (for_events) until emitted_ moves past `seen`;
  // false once stopping.
  auto wait = [&](int64_t ms, bool for_events, uint64_t seen) {
    MutexLock l(&mu_);
    auto until = Clock::now() + std::chrono::milliseconds(ms);
    while (!stopping_ && Clock::now() < until &&
           !(for_events && emitted_ != seen))
      cv_.WaitFor(&mu_, until - Clock::now());
    return !stopping_;
  };
  while (true) {
    uint64_t seen;
    {
      MutexLock l(&mu_);
      if (stopping_) return;
      seen = emitted_;  // before the read: an Emit after it wakes us
    }
    // One deliverer across replicas sharing the store's index.
    auto lease = store_->HoldQueue(s->queue);
    if (!lease.ok()) {
      if (!wait(1000, true, seen)) return;
      continue;
    }
    auto batch = store_->Peek(s->queue, 32);
    if (!batch.ok() || batch->empty()) {
      lease->reset();
      if (!wait(1000, true, seen)) return;
      continue;
    }
    std::string body = "{\"events\":[";
    for (size_t i = 0; i < batch->size(); ++i) {
      if (i) body += ',';
      body += (*batch)[i].payload;
    }
    body += "]}";
    auto res =
        client::PostUrl(s->ep.url, s->ep.headers, body,
                        "application/vnd.docker.distribution.events.v1+json",
                        static_cast<int>(s->ep.timeout_seconds));
    if (res.ok() && *res >= 200 && *res < 400) {
      if (store_->Ack(s->queue, batch->back().seq).ok()) {
        s->delivered += batch->size();
        s->pending -= static_cast<int64_t>(batch->size());
      }
      backoff_ms = s->ep.backoff_seconds * 1000;
      continue;
    }
    lease->reset();  // another replica may try while this one backs off
    ++s->failures;
    std::fprintf(stderr,
                 "ocireg: notifications: endpoint %s: %s; %zu events wait, "
                 "retrying in %lld ms\n",
                 s->ep.name.c_str(),
                 res.ok() ? ("answered " + std::to_string(*res)).c_str()
                          : res.status().message().c_str(),
                 batch->size(), static_cast<long long>(backoff_ms));
    if (!wait(backoff_ms, false, 0)) return;
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 60000);
  }
}

}  // namespace ocib::registry
