#include "common/thread.h"

#include <pthread.h>
#include <signal.h>

namespace hsmfs {

std::thread StartThread(const std::string& name, std::function<void()> fn) {
  sigset_t all, old;
  sigfillset(&all);
  // The new thread inherits the mask in force when it is created.
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::thread t(std::move(fn));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_setname_np(t.native_handle(), name.substr(0, 15).c_str());
  return t;
}

}  // namespace hsmfs
