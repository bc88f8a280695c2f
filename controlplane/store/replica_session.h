// A control-plane replica's standing session with the PostgreSQL database it shares with the
// other replicas: it hears every topology commit (LISTEN on kTopologyChannel), whichever
// replica made it, and competes for the fleet lease, the right to run the work that must
// happen once per fleet (usage pruning). The lease is a session advisory lock: the database
// releases it when the session ends, so a replica that dies or loses the database hands it on
// without any timeout of our own.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace spillway {

class ReplicaSession {
 public:
  // Run on the session's thread after every commit they hear of (kTopologyChannel,
  // kHealthChannel), and both after every (re)connection, which may have missed some: the
  // caller reloads from the store. One that returns false (the store's own connection still
  // away) runs again a poll later, until it succeeds: a commit heard is never dropped.
  struct Listeners {
    std::function<bool()> on_topology;
    std::function<bool()> on_health;
  };
  ReplicaSession(std::string url, std::string display, Listeners listeners);
  ~ReplicaSession();  // ends the session (and so the lease)
  ReplicaSession(const ReplicaSession&) = delete;
  ReplicaSession& operator=(const ReplicaSession&) = delete;

  void Start();
  // Whether this replica holds the fleet lease now.
  bool holds_lease() const { return holds_lease_.load(std::memory_order_acquire); }

 private:
  void Run();

  const std::string url_;  // secret: may hold a password
  const std::string display_;
  const Listeners listeners_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> holds_lease_{false};
  std::thread thread_;
};

}  // namespace spillway
