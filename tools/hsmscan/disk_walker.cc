#include "tools/hsmscan/disk_walker.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace hsmfs::hsmscan {
namespace {

// Large enough that a directory of thousands of entries is one system call.
constexpr size_t kDentsBuffer = 256 * 1024;

struct linux_dirent64_hdr {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];
};

struct FileEntry {
  uint32_t name_off;
  uint32_t name_len;
  int64_t size;
  int64_t mtime;
};

// One directory: its place in os.walk order, and once read, its files and
// children. Owned by its parent's `children` until delivered.
struct Node {
  std::string rel;            // "" for the root
  std::vector<uint32_t> key;  // child indices from the root: the walk order
  bool done = false;          // guarded by Walker::mu_
  std::string names;
  std::vector<FileEntry> files;
  std::vector<std::unique_ptr<Node>> children;
  std::vector<std::string> errors;
};

struct KeyAfter {
  bool operator()(const Node* a, const Node* b) const { return a->key > b->key; }
};

class Walker {
 public:
  Walker(int root_fd, std::string root) : root_fd_(root_fd), root_(std::move(root)) {}

  void Run(int threads, const FileSink& sink, const WalkErrorSink& on_error) {
    auto top = std::make_unique<Node>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push(top.get());
      pending_ = 1;
    }
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back([this] { Work(); });
    // Deliver in pre-order; a stack of owned nodes not yet delivered.
    std::vector<std::unique_ptr<Node>> stack;
    stack.push_back(std::move(top));
    std::string path;
    while (!stack.empty()) {
      std::unique_ptr<Node> node = std::move(stack.back());
      stack.pop_back();
      {
        std::unique_lock<std::mutex> lock(mu_);
        done_cv_.wait(lock, [&] { return node->done; });
      }
      for (const std::string& e : node->errors) on_error(e);
      for (const FileEntry& f : node->files) {
        path.assign(node->rel);
        if (!path.empty()) path += '/';
        path.append(node->names, f.name_off, f.name_len);
        sink(path, f.size, f.mtime);
      }
      for (auto it = node->children.rbegin(); it != node->children.rend(); ++it) {
        stack.push_back(std::move(*it));
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : pool) t.join();
  }

 private:
  void Work() {
    std::unique_ptr<char[]> buf(new char[kDentsBuffer]);
    while (true) {
      Node* node;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        node = queue_.top();
        queue_.pop();
      }
      ReadDir(*node, buf.get());
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& c : node->children) queue_.push(c.get());
        node->done = true;
      }
      if (!node->children.empty()) work_cv_.notify_all();
      done_cv_.notify_all();
    }
  }

  void AddFile(Node& node, const char* name, size_t len, const struct statx& st) {
    node.files.push_back({static_cast<uint32_t>(node.names.size()), static_cast<uint32_t>(len),
                          static_cast<int64_t>(st.stx_size),
                          // int(st_mtime) truncates toward zero.
                          static_cast<int64_t>(st.stx_mtime.tv_sec) +
                              (st.stx_mtime.tv_sec < 0 && st.stx_mtime.tv_nsec > 0 ? 1 : 0)});
    node.names.append(name, len);
  }

  void ReadDir(Node& node, char* buf) {
    const int fd = node.rel.empty() ? ::dup(root_fd_)
                                    : ::openat(root_fd_, node.rel.c_str(),
                                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      node.errors.push_back("cannot open directory " + root_ + "/" + node.rel + ": " +
                            std::strerror(errno));
      return;
    }
    uint32_t child_index = 0;
    while (true) {
      const long n = ::syscall(SYS_getdents64, fd, buf, kDentsBuffer);
      if (n < 0) {
        if (errno == EINTR) continue;
        node.errors.push_back("cannot read directory " + root_ + "/" + node.rel + ": " +
                              std::strerror(errno));
        break;
      }
      if (n == 0) break;
      for (long off = 0; off < n;) {
        const auto* d = reinterpret_cast<const linux_dirent64_hdr*>(buf + off);
        off += d->d_reclen;
        const char* name = d->d_name;
        const size_t len = std::strlen(name);
        if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
          continue;
        }
        unsigned char type = d->d_type;
        struct statx st;
        bool have_stat = false;
        if (type == DT_UNKNOWN || (type != DT_DIR && type != DT_LNK)) {
          if (::statx(fd, name, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_SIZE | STATX_MTIME, &st) !=
              0) {
            node.errors.push_back("cannot stat " + root_ + "/" + node.rel + "/" + name + ": " +
                                  std::strerror(errno));
            continue;
          }
          have_stat = true;
          type = S_ISDIR(st.stx_mode) ? DT_DIR : S_ISLNK(st.stx_mode) ? DT_LNK : DT_REG;
        }
        if (type == DT_LNK) continue;  // os.walk does not follow; islink() files are skipped
        if (type == DT_DIR) {
          auto child = std::make_unique<Node>();
          child->rel = node.rel.empty() ? std::string(name, len) : node.rel + "/" + name;
          child->key = node.key;
          child->key.push_back(child_index++);
          node.children.push_back(std::move(child));
          continue;
        }
        if (have_stat) AddFile(node, name, len, st);
      }
    }
    ::close(fd);
  }

  const int root_fd_;
  const std::string root_;
  std::mutex mu_;  // guards queue_, stop_, pending_ and every Node::done
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::priority_queue<Node*, std::vector<Node*>, KeyAfter> queue_;
  size_t pending_ = 0;
  bool stop_ = false;
};

int DefaultThreads() {
  if (const char* env = std::getenv("HSMSCAN_THREADS"); env && *env) {
    const int n = std::atoi(env);
    if (n > 0) return std::min(n, 256);
  }
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  // Metadata reads on network file systems wait more than they compute.
  return std::clamp(hw * 2, 4, 32);
}

}  // namespace

Status WalkTree(const std::string& root, const WalkOptions& options, const FileSink& sink,
                const WalkErrorSink& on_error) {
  const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening " + root);
  Walker walker(fd, root);
  walker.Run(options.threads > 0 ? options.threads : DefaultThreads(), sink, on_error);
  ::close(fd);
  return Status::Ok();
}

}  // namespace hsmfs::hsmscan
