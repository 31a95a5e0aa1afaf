#pragma once

// Threads of ours start with asynchronous signals blocked, so that SIGTERM and
// SIGINT reach the thread that waits for them (the FUSE session loop) instead
// of a worker that would swallow them.

#include <functional>
#include <string>
#include <thread>

namespace hsmfs {

// Starts `fn` on a new thread named `name` (at most 15 characters are kept).
std::thread StartThread(const std::string& name, std::function<void()> fn);

}  // namespace hsmfs
