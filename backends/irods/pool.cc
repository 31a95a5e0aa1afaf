#include "backends/irods/pool.h"

#include <utility>

namespace hsmfs::irods {

ConnectionPool::ConnectionPool(ConnectOptions options, int max)
    : options_(std::move(options)), max_(max < 1 ? 1 : max) {}

ConnectionPool::~ConnectionPool() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& c : idle_) c->Disconnect();
}

ConnectionPool::Lease& ConnectionPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = other.pool_;
    conn_ = std::move(other.conn_);
  }
  return *this;
}

ConnectionPool::Lease::~Lease() { Release(); }

void ConnectionPool::Lease::Release() {
  if (conn_ != nullptr && pool_ != nullptr) pool_->Return(std::move(conn_));
  conn_.reset();
}

Result<ConnectionPool::Lease> ConnectionPool::Acquire(bool fresh) {
  std::unique_ptr<Connection> stale;
  {
    std::unique_lock<std::mutex> l(mu_);
    while (true) {
      if (!fresh && !idle_.empty()) {
        std::unique_ptr<Connection> c = std::move(idle_.front());
        idle_.pop_front();
        return Lease(this, std::move(c));
      }
      if (count_ < max_) break;
      if (fresh && !idle_.empty()) {
        // Make room for the new connection by closing an idle one.
        stale = std::move(idle_.front());
        idle_.pop_front();
        --count_;
        break;
      }
      cv_.wait(l);
    }
    ++count_;
  }
  if (stale) stale->Disconnect();
  // Connecting happens outside the lock: it can take up to connect_timeout.
  Result<std::unique_ptr<Connection>> c = Connection::Open(options_);
  std::lock_guard<std::mutex> l(mu_);
  if (!c.ok()) {
    --count_;
    cv_.notify_one();
    return c.status();
  }
  ++opened_;
  return Lease(this, std::move(c).value());
}

void ConnectionPool::Return(std::unique_ptr<Connection> conn) {
  std::lock_guard<std::mutex> l(mu_);
  if (conn->broken()) {
    --count_;
  } else {
    // Most recently used first: the warmest connection serves the next call.
    idle_.push_front(std::move(conn));
  }
  cv_.notify_one();
}

int ConnectionPool::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return count_;
}

int ConnectionPool::opened() const {
  std::lock_guard<std::mutex> l(mu_);
  return opened_;
}

}  // namespace hsmfs::irods
