// Webhooks: events (push, pull, delete, mount) sent to the configured
// endpoints in Distribution's envelope (Content-Type
// application/vnd.docker.distribution.events.v1+json, {"events": [...]}
// with id, timestamp, action, target, request, actor, source), so
// receivers written for Distribution work unchanged.
//
// Delivery is durable and ordered: Emit() appends the event to each
// accepting endpoint's queue in the store (one synced write) before the
// request is answered; one sender per endpoint posts the queue's oldest
// events in order, removes them once the receiver answers 2xx/3xx, and
// otherwise retries the same events with backoff (doubling up to 60 s),
// across restarts and kill -9. An endpoint holding max_pending events
// takes no new ones until it drains (they are dropped and counted). The
// guarantee is at-least-once in order per
// endpoint (so per repository): an event is sent again only if the
// registry stopped between the receiver's answer and the removal; each
// event's "id" is stable for receivers to drop such duplicates.
//
// Thread safety: Emit from any thread; Start once; Stop from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "registry/config.h"
#include "store/blob_store.h"
#include "util/mutex.h"
#include "util/status.h"

namespace ocib::registry {

struct Event {
  std::string action;  // "push", "pull", "delete", "mount"
  std::string repository;
  std::string digest;           // may be empty (a tag deletion)
  std::string tag;              // may be empty
  std::string media_type;       // may be empty (deletions)
  int64_t size = -1;            // -1: unknown (deletions)
  std::string from_repository;  // mounts
  std::string url;              // the object's URL on this registry
  // The request that caused it.
  std::string request_addr, request_host, request_method, user_agent;
  std::string actor;  // "" = anonymous
};

class Notifier {
 public:
  // source_addr: "host:port" this registry serves on (the events' source).
  Notifier(std::vector<NotificationEndpoint> endpoints, Store* store,
           std::string source_addr);
  ~Notifier();  // stops the senders

  // Queues e for every enabled endpoint whose filters accept it; durable
  // when it returns. kInternal if the store refuses the write.
  Status Emit(const Event& e);
  void Start();
  void Stop();

  struct EndpointStats {
    std::string name;
    uint64_t pending = 0, delivered = 0, failures = 0, dropped = 0;
  };
  std::vector<EndpointStats> stats() const;

 private:
  struct Sender;
  void Run(Sender* s);
  bool Accepts(const NotificationEndpoint& ep, const Event& e) const;

  std::vector<std::unique_ptr<Sender>> senders_;
  Store* const store_;
  const std::string source_addr_;
  const std::string instance_id_;
  Mutex mu_;
  CondVar cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  uint64_t emitted_ GUARDED_BY(mu_) = 0;  // wakes senders
};

// The JSON of one event in Distribution's shape (for tests and the
// sender); id and timestamp are given.
std::string EventJson(const Event& e, const std::string& id,
                      const std::string& timestamp,
                      const std::string& source_addr,
                      const std::string& instance_id);

}  // namespace ocib::registry
