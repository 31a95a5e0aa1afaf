#pragma once

// ConnectionPool: at most `max` authenticated Connections to one iRODS
// server, opened lazily on demand and reused. A connection that comes back
// broken() (a transport failure or timeout left its session state unknown)
// is closed and forgotten, so the next Acquire opens a new one.
//
// Thread-safe. Acquire blocks while `max` connections are leased; a caller
// must therefore never hold two leases at once (it could deadlock with
// max = 1). Errors of Acquire are those of Connection::Open: kUnavailable or
// kDeadlineExceeded for the network, kPermissionDenied for authentication.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "backends/irods/connection.h"

namespace hsmfs::irods {

class ConnectionPool final {
 public:
  ConnectionPool(ConnectOptions options, int max);
  // Disconnects the idle connections. REQUIRES: no lease outstanding.
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // A connection handed out by the pool; returned to it when destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&& other) noexcept;
    ~Lease();
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    void Release();
    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<Connection> conn_;
  };

  // An idle connection, or a new one if fewer than `max` exist; waits
  // otherwise. `fresh` skips (and closes) idle ones: the retry after a
  // transport failure must not pick another connection that went stale.
  Result<Lease> Acquire(bool fresh = false);

  // Connections that exist now (idle and leased), and opened since start.
  int size() const;
  int opened() const;

 private:
  void Return(std::unique_ptr<Connection> conn);

  const ConnectOptions options_;
  const int max_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Connection>> idle_;  // GUARDED_BY(mu_)
  int count_ = 0;                                 // GUARDED_BY(mu_): idle + leased + being opened
  int opened_ = 0;                                // GUARDED_BY(mu_)
};

}  // namespace hsmfs::irods
