#include "backends/irods/irods_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>

#include "backends/irods/auth.h"
#include "backends/irods/mapping.h"
#include "backends/irods/pool.h"
#include "common/checksum.h"
#include "common/fd.h"

namespace hsmfs::irods {
namespace {

using backends::ObjectInfo;
using backends::ObjectPath;
using backends::ObjectType;

// ReadObject/WriteObject size: large enough that the per-call round trip is
// noise, small enough that a dropped connection loses little.
constexpr int kChunk = 4 << 20;
constexpr int kPageRows = 500;
// Paths per rule call: one call per listing page and for the 200-file
// batches the engine hands StageMany; rule inputs of a few tens of KiB.
constexpr size_t kRuleBatch = 500;
// Names per GenQuery "in (...)" condition (the server bounds condition text).
constexpr size_t kInBatch = 50;
constexpr Duration kDefaultStageWaitLimit = std::chrono::hours(6);

constexpr int kObjTypeData = 1;
constexpr int kObjTypeColl = 2;

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

// A failure of the transport (socket error, reset, EOF) rather than an
// answer of the server: the session is gone, the request may be retried.
bool IsTransport(const Status& s, const Connection& c) {
  return s.code() == Code::kUnavailable && c.broken();
}

// An open refused by the site's rule with one of the offline codes
// (Connection::OpenObject maps those to kUnavailable).
bool IsOfflineRefusal(const Status& s, const Connection& c) {
  return s.code() == Code::kUnavailable && !c.broken() && c.last_refused_offline();
}

bool OnDisk(std::string_view state) {
  return ResidencyOfDmfState(state) == backends::Residency::kDisk;
}

ConnectOptions::CsPolicy PolicyOf(std::string_view tls) {
  if (tls == "none") return ConnectOptions::CsPolicy::kNone;
  if (tls == "refuse") return ConnectOptions::CsPolicy::kRefuse;
  if (tls == "require") return ConnectOptions::CsPolicy::kRequire;
  return ConnectOptions::CsPolicy::kDontCare;
}

ConnectOptions::Auth AuthOf(std::string_view auth) {
  if (auth == "legacy") return ConnectOptions::Auth::kLegacy;
  if (auth == "plugin") return ConnectOptions::Auth::kPlugin;
  return ConnectOptions::Auth::kAuto;
}

Result<std::string> ReadPasswordFile(const std::filesystem::path& file) {
  const std::string what = "password_file " + file.string();
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return InvalidArgumentError(what + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return InvalidArgumentError(what + ": " + std::strerror(errno));
  std::string contents;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) contents.append(buf, static_cast<size_t>(n));
  if (n < 0) return InvalidArgumentError(what + ": " + std::strerror(errno));
  while (!contents.empty() && (contents.back() == '\n' || contents.back() == '\r')) {
    contents.pop_back();
  }
  // iinit scrambles with the uid of the user who owns the file.
  Result<std::string> pw = DecodeIrodsA(contents, st.st_uid);
  if (!pw.ok() || pw->empty()) {
    return InvalidArgumentError(what + ": not an .irodsA password file");
  }
  return pw;
}

Status WriteAll(int fd, std::string_view data, const std::filesystem::path& dest) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "write " + dest.string());
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace

struct IrodsBackend::Impl {
  Impl(const BackendConfig& c, std::string root_coll, ConnectOptions options, Clock& clk)
      : config(c),
        root(std::move(root_coll)),
        clock(clk),
        pool(std::move(options), c.connections) {}

  std::string Abs(const ObjectPath& p) const {
    if (p.empty()) return root;
    return root == "/" ? "/" + p : root + "/" + p;
  }

  // Runs op(connection) on a pooled connection. A transport failure is
  // retried once on a newly opened connection; `attempts` (if set) tells the
  // caller whether the retry happened, since a non-idempotent request may
  // have been done by the server before the connection broke.
  template <typename F>
  auto Run(F&& op, int* attempts = nullptr) -> decltype(op(std::declval<Connection&>())) {
    for (int attempt = 1;; ++attempt) {
      if (attempts != nullptr) *attempts = attempt;
      Result<ConnectionPool::Lease> lease = pool.Acquire(attempt > 1);
      if (!lease.ok()) return lease.status();
      auto r = op(**lease);
      if (attempt > 1 || !IsTransport(StatusOf(r), **lease)) return r;
    }
  }

  Result<RodsObjStat> ObjStat(const std::string& full) {
    return Run([&](Connection& c) { return c.ObjStat(full); });
  }

  // Pages through a GenQuery. A transport failure restarts the query on a
  // new connection at the row reached (partialStartIndex), so `page` sees
  // each row once; it is retried as long as the previous attempt made
  // progress. `page` may make calls of its own on the connection it is given
  // (never through the pool: that could wait for the lease held here); if
  // such a call breaks the connection, the page is delivered again.
  using PageFn = std::function<Status(const GenQueryOut&, Connection&)>;
  Status QueryAll(const GenQueryInp& inp, const PageFn& page, const CancelToken& cancel) {
    int consumed = 0;
    int failed_at = -1;
    while (true) {
      Result<ConnectionPool::Lease> lease = pool.Acquire(failed_at >= 0);
      if (!lease.ok()) return lease.status();
      Connection& c = **lease;
      GenQueryInp q = inp;
      q.max_rows = kPageRows;
      q.continue_inx = 0;
      q.partial_start_index = consumed;
      Status s;
      bool transport = false;
      while (true) {
        if (cancel.cancelled()) {
          s = CancelledError("iRODS listing cancelled");
        } else {
          Result<GenQueryOut> out = c.GenQuery(q);
          if (!out.ok()) {
            s = out.status();
            transport = IsTransport(s, c);
            break;
          }
          if (out->row_cnt > 0) {
            s = page(*out, c);
            if (!s.ok() && IsTransport(s, c)) {
              transport = true;
              break;
            }
            consumed += out->row_cnt;
          }
          if (out->continue_inx <= 0) break;
          q.continue_inx = out->continue_inx;
          q.partial_start_index = 0;
        }
        if (!s.ok()) {
          // maxRows 0 with the continueInx frees the server's statement.
          if (q.continue_inx > 0) {
            q.max_rows = 0;
            c.GenQuery(q).status().IgnoreError();
          }
          break;
        }
      }
      if (!transport || failed_at == consumed) return s;
      failed_at = consumed;
    }
  }

  // Calls `rule` (a microservice or a rule text) with `paths` in *paths.
  // Returns *out for a state rule, "" otherwise.
  Result<std::string> CallRule(const std::string& rule, const std::vector<std::string>& paths,
                               bool with_output) {
    // Staging and state queries are idempotent: a transport retry is safe.
    return Run([&](Connection& c) { return CallRuleOn(c, rule, paths, with_output); });
  }
  Result<std::string> CallRuleOn(Connection& c, const std::string& rule,
                                 const std::vector<std::string>& paths, bool with_output) {
    ExecMyRuleInp inp;
    inp.my_rule = DmfRuleText(rule, with_output);
    const std::string len_param(kRuleLenParam);
    inp.out_param_desc = with_output ? "*out%" + len_param : len_param;
    inp.params.params.push_back({"*paths", "STR_PI", DmfRulePathsParam(paths), std::nullopt});
    HSMFS_ASSIGN_OR_RETURN(MsParamArray out, c.ExecRule(inp));
    // A server that cannot parse *paths runs the rule without it and says
    // status 0: the length the rule saw tells. A site's own rule text need
    // not return it; when it does, it is checked too.
    const MsParam* len = out.Find(len_param);
    if (len == nullptr && rule.find('{') == std::string::npos) {
      return FailedPreconditionError("iRODS rule " + rule + " returned no " + len_param +
                                     ": the server did not run it to its end");
    }
    if (len != nullptr && len->value != std::to_string(DmfRulePathsLength(paths))) {
      return FailedPreconditionError("iRODS rule " + rule + " ran without its input: *paths of " +
                                     len->value + " bytes on the server, " +
                                     std::to_string(DmfRulePathsLength(paths)) + " sent");
    }
    if (!with_output) return std::string();
    const MsParam* p = out.Find("*out");
    if (p == nullptr) {
      return FailedPreconditionError("iRODS rule " + rule + " returned no *out parameter");
    }
    return p->value;
  }

  // DMF states of the objects `paths` (absolute). Objects without a state
  // (not DMF-managed, or missing) are absent from the result; with
  // dmf_lookup = rule a missing object is "INV".
  Result<std::unordered_map<std::string, std::string>> QueryStates(
      const std::vector<std::string>& paths) {
    std::unordered_map<std::string, std::string> states;
    if (config.dmf_lookup == "rule") {
      for (size_t i = 0; i < paths.size(); i += kRuleBatch) {
        std::vector<std::string> batch(
            paths.begin() + static_cast<std::ptrdiff_t>(i),
            paths.begin() + static_cast<std::ptrdiff_t>(std::min(paths.size(), i + kRuleBatch)));
        HSMFS_ASSIGN_OR_RETURN(std::string out, CallRule(config.dmf_state_rule, batch, true));
        for (auto& [p, st] : ParseDmfStateLines(out)) states[p] = st;
      }
      return states;
    }
    if (config.dmf_lookup != "avu") return states;
    HSMFS_ASSIGN_OR_RETURN(auto avus, QueryAvus(paths));
    for (auto& [p, a] : avus) {
      if (!a.state.empty()) states[p] = std::move(a.state);
    }
    return states;
  }

  // The AVUs hsmfs reads of an object.
  struct Avus {
    std::string state;  // dmf_attr, with dmf_lookup = avu
    std::string mtime;  // kMtimeAttr
  };
  // The GenQuery condition on META_DATA_ATTR_NAME for them.
  std::string AvuNames() const {
    return config.dmf_lookup == "avu" ? InCondition({config.dmf_attr, std::string(kMtimeAttr)})
                                      : EqualsCondition(kMtimeAttr);
  }
  void AddAvu(Avus& a, const std::string& name, const std::string& value) const {
    if (name == kMtimeAttr) {
      a.mtime = value;
    } else if (config.dmf_lookup == "avu" && name == config.dmf_attr) {
      a.state = value;
    }
  }

  // The AVUs of the objects `paths` (absolute), by path: one query per
  // collection and 50 names.
  Result<std::unordered_map<std::string, Avus>> QueryAvus(const std::vector<std::string>& paths) {
    std::unordered_map<std::string, Avus> avus;
    std::map<std::string, std::vector<std::string>> by_coll;
    for (const std::string& p : paths) {
      by_coll[ParentCollection(p)].emplace_back(LastComponent(p));
    }
    for (auto& [coll, names] : by_coll) {
      for (size_t i = 0; i < names.size(); i += kInBatch) {
        std::vector<std::string> batch(
            names.begin() + static_cast<std::ptrdiff_t>(i),
            names.begin() + static_cast<std::ptrdiff_t>(std::min(names.size(), i + kInBatch)));
        GenQueryInp q;
        q.select = {{kColDataName, 1}, {kColMetaDataAttrName, 1}, {kColMetaDataAttrValue, 1}};
        q.where = {
            {kColCollName, EqualsCondition(coll)},
            {kColMetaDataAttrName, AvuNames()},
            {kColDataName, batch.size() == 1 ? EqualsCondition(batch[0]) : InCondition(batch)}};
        const std::string prefix = coll == "/" ? "/" : coll + "/";
        HSMFS_RETURN_IF_ERROR(QueryAll(
            q,
            [&](const GenQueryOut& out, Connection&) {
              for (int r = 0; r < out.row_cnt; ++r) {
                const std::string* name = out.Get(r, kColDataName);
                const std::string* attr = out.Get(r, kColMetaDataAttrName);
                const std::string* value = out.Get(r, kColMetaDataAttrValue);
                if (name && attr && value) AddAvu(avus[prefix + *name], *attr, *value);
              }
              return Status::Ok();
            },
            CancelToken::None()));
      }
    }
    return avus;
  }

  // The DMF state of one object: "" if it has none (or dmf_lookup = none).
  Result<std::string> StateOf(const std::string& full) {
    if (config.dmf_lookup == "none") return std::string();
    HSMFS_ASSIGN_OR_RETURN(auto states, QueryStates({full}));
    auto it = states.find(full);
    return it == states.end() ? std::string() : it->second;
  }

  // Issues the stage rule for `paths` in batches.
  Status StageRule(const std::vector<std::string>& paths) {
    for (size_t i = 0; i < paths.size(); i += kRuleBatch) {
      std::vector<std::string> batch(
          paths.begin() + static_cast<std::ptrdiff_t>(i),
          paths.begin() + static_cast<std::ptrdiff_t>(std::min(paths.size(), i + kRuleBatch)));
      HSMFS_RETURN_IF_ERROR(CallRule(config.stage_rule, batch, false).status());
    }
    return Status::Ok();
  }

  // Progress of one Read's recall, kept across refused opens.
  struct Recall {
    TimePoint start;
    int polls_since_stage = -1;  // -1: not staged yet
  };

  // After an open was refused as offline (or the state said so): stages the
  // object unless a recall is running, then polls its state every stage_poll
  // until it is on disk. Without a state lookup it returns after one poll
  // interval and the caller tries the open again. The whole wait of one Read
  // is bounded by stage_wait_limit.
  Status WaitOnline(const std::string& full, std::string state, const CancelToken& cancel,
                    Recall& recall) {
    // An object still OFL this many polls after its stage rule is staged
    // again (the first request may have been lost with a DMF restart).
    constexpr int kRestageAfterPolls = 30;
    while (true) {
      if (cancel.cancelled()) return CancelledError("recall of " + full + " cancelled");
      if (clock.Now() - recall.start > stage_wait_limit) {
        return UnavailableError("recall of " + full + ": still offline (DMF " +
                                (state.empty() ? "?" : state) + ") after " +
                                FormatDuration(stage_wait_limit));
      }
      if (config.dmf_lookup != "none" && !state.empty() && OnDisk(state)) return Status::Ok();
      // UNM: a recall is already running.
      const bool stage = recall.polls_since_stage < 0
                             ? state != "UNM"
                             : state == "OFL" && recall.polls_since_stage >= kRestageAfterPolls;
      if (stage && !config.stage_rule.empty()) {
        HSMFS_RETURN_IF_ERROR(StageRule({full}));
        recall.polls_since_stage = 0;
      }
      if (cancel.WaitFor(config.stage_poll)) {
        return CancelledError("recall of " + full + " cancelled");
      }
      if (recall.polls_since_stage >= 0) ++recall.polls_since_stage;
      if (config.dmf_lookup == "none") return Status::Ok();
      HSMFS_ASSIGN_OR_RETURN(state, StateOf(full));
      // An object without a state after a refusal: let the open decide.
      if (state.empty()) return Status::Ok();
    }
  }

  ObjectInfo FileInfo(const std::string& name, const std::string& full, uint64_t size,
                      int64_t mtime_ns, std::string_view checksum, std::string state) const {
    ObjectInfo o;
    o.name = name;
    o.type = ObjectType::kFile;
    o.mode = 0644;
    o.size = size;
    o.mtime_ns = mtime_ns;
    o.checksum = HsmChecksum(checksum);
    o.location = "irods:" + full;
    o.residency = ResidencyOfDmfState(state);
    o.hsm_state = std::move(state);
    return o;
  }

  ObjectInfo DirInfo(const std::string& name, const std::string& full,
                     std::string_view mtime) const {
    ObjectInfo o;
    o.name = name;
    o.type = ObjectType::kDir;
    o.mode = 0755;
    o.mtime_ns = IrodsTimeToNanos(mtime);
    o.location = "irods:" + full;
    return o;
  }

  Status ReadOnce(const std::string& full, const std::filesystem::path& dest,
                  const backends::ReadOptions& options);
  // Reads the open descriptor `fd` from `offset` to the end into `out`,
  // advancing `offset`; closes `fd` unless the connection broke.
  Status ReadFrom(Connection& c, int fd, const std::string& full, uint64_t& offset, int out,
                  const std::filesystem::path& dest, Hasher* hasher,
                  const backends::ReadOptions& options);
  // One attempt of Put; `fresh` asks for a new connection, `transport`
  // tells whether it failed because the connection broke.
  Result<ObjectInfo> PutOnce(const std::filesystem::path& src, const std::string& full,
                             const backends::PutOptions& options, bool fresh, bool* transport);

  const BackendConfig config;
  const std::string root;
  Clock& clock;
  ConnectionPool pool;
  Duration stage_wait_limit = kDefaultStageWaitLimit;
};

Result<std::unique_ptr<IrodsBackend>> IrodsBackend::Create(const BackendConfig& config,
                                                           Clock& clock) {
  if (config.host.empty() || config.zone.empty() || config.user.empty()) {
    return InvalidArgumentError("type irods needs host, zone and user");
  }
  std::string root =
      config.root.empty() ? "/" + config.zone + "/home/" + config.user : config.root.string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root.empty() || root[0] != '/') {
    return InvalidArgumentError("iRODS root \"" + root + "\" is not an absolute collection path");
  }
  ConnectOptions o;
  o.host = config.host;
  o.port = config.port;
  o.user = config.user;
  o.zone = config.zone;
  if (!config.password_file.empty()) {
    HSMFS_ASSIGN_OR_RETURN(o.password, ReadPasswordFile(config.password_file));
  } else {
    o.password = config.password;
  }
  o.auth = AuthOf(config.auth);
  o.cs_policy = PolicyOf(config.tls);
  o.ca_file = config.ca_file.string();
  o.verify_server = config.verify_server;
  o.connect_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.connect_timeout);
  o.io_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.io_timeout);
  o.offline_codes = config.offline_codes;
  const std::string where = "iRODS " + config.user + "#" + config.zone + "@" + config.host + ":" +
                            std::to_string(config.port);
  auto impl = std::make_unique<Impl>(config, root, std::move(o), clock);
  {
    // One connection now, so that a wrong password or a server that is down
    // shows at mount time rather than at the first listing.
    Result<ConnectionPool::Lease> lease = impl->pool.Acquire();
    // The authentication failure names user, zone and server already.
    if (!lease.ok() && lease.status().code() == Code::kPermissionDenied) return lease.status();
    if (!lease.ok()) return lease.status().Annotate(where);
    Result<RodsObjStat> st = (*lease)->ObjStat(root);
    if (!st.ok() && st.status().code() == Code::kNotFound) {
      return InvalidArgumentError(where + ": root collection " + root + " does not exist");
    }
    if (!st.ok()) return st.status().Annotate(where);
    if (st->obj_type != kObjTypeColl) {
      return InvalidArgumentError(where + ": root " + root + " is not a collection");
    }
  }
  return std::unique_ptr<IrodsBackend>(new IrodsBackend(std::move(impl)));
}

IrodsBackend::IrodsBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IrodsBackend::~IrodsBackend() = default;

void IrodsBackend::set_stage_wait_limit(Duration limit) { impl_->stage_wait_limit = limit; }
int IrodsBackend::connections_opened() const { return impl_->pool.opened(); }

Result<ObjectInfo> IrodsBackend::Stat(const ObjectPath& path) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  const std::string full = impl_->Abs(path);
  HSMFS_ASSIGN_OR_RETURN(RodsObjStat st, impl_->ObjStat(full));
  const std::string name(LastComponent(path));
  if (st.obj_type == kObjTypeColl) return impl_->DirInfo(name, full, st.modify_time);
  // One query gives the mtime AVU and (dmf_lookup = avu) the DMF state.
  HSMFS_ASSIGN_OR_RETURN(auto avus, impl_->QueryAvus({full}));
  Impl::Avus a = avus[full];
  if (impl_->config.dmf_lookup == "rule") {
    HSMFS_ASSIGN_OR_RETURN(a.state, impl_->StateOf(full));
  }
  return impl_->FileInfo(name, full, static_cast<uint64_t>(st.obj_size),
                         ResolveMtime(a.mtime, st.modify_time), st.chksum, std::move(a.state));
}

Status IrodsBackend::List(const ObjectPath& dir, const backends::ListSink& sink,
                          const CancelToken& cancel) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(dir));
  const std::string full = impl_->Abs(dir);
  HSMFS_ASSIGN_OR_RETURN(RodsObjStat st, impl_->ObjStat(full));
  if (st.obj_type != kObjTypeColl) return Status(Code::kNotDirectory, "list " + full);
  const std::string prefix = full == "/" ? "/" : full + "/";

  GenQueryInp colls;
  colls.select = {{kColCollName, 1}, {kColCollModifyTime, 1}};
  colls.where = {{kColCollParentName, EqualsCondition(full)}};
  HSMFS_RETURN_IF_ERROR(impl_->QueryAll(
      colls,
      [&](const GenQueryOut& out, Connection&) {
        std::vector<ObjectInfo> batch;
        for (int r = 0; r < out.row_cnt; ++r) {
          const std::string* path = out.Get(r, kColCollName);
          const std::string* mtime = out.Get(r, kColCollModifyTime);
          if (path == nullptr || *path == full) continue;
          batch.push_back(
              impl_->DirInfo(std::string(LastComponent(*path)), *path, mtime ? *mtime : ""));
        }
        return batch.empty() ? Status::Ok() : sink(std::move(batch));
      },
      cancel));

  // The AVUs of the whole collection (mtimes recorded by Put and, with
  // dmf_lookup = avu, the DMF states) in one paged query, read before the
  // objects so that every batch goes to the sink complete.
  std::unordered_map<std::string, Impl::Avus> avus;
  const bool by_rule = impl_->config.dmf_lookup == "rule";
  GenQueryInp avu_query;
  avu_query.select = {{kColDataName, 1}, {kColMetaDataAttrName, 1}, {kColMetaDataAttrValue, 1}};
  avu_query.where = {{kColCollName, EqualsCondition(full)},
                     {kColMetaDataAttrName, impl_->AvuNames()}};
  HSMFS_RETURN_IF_ERROR(impl_->QueryAll(
      avu_query,
      [&](const GenQueryOut& out, Connection&) {
        for (int r = 0; r < out.row_cnt; ++r) {
          const std::string* name = out.Get(r, kColDataName);
          const std::string* attr = out.Get(r, kColMetaDataAttrName);
          const std::string* value = out.Get(r, kColMetaDataAttrValue);
          if (name && attr && value) impl_->AddAvu(avus[*name], *attr, *value);
        }
        return Status::Ok();
      },
      cancel));

  // Objects: one row per replica, sorted by name; the rows of one object are
  // folded into one entry, preferring a good replica (status 1). The last
  // entry of a page waits for the next page, which may hold more replicas.
  std::optional<ObjectInfo> pending;
  bool pending_good = false;
  // `c`: the connection of the running query, for the state rule.
  auto flush = [&](std::vector<ObjectInfo>&& batch, Connection* c) -> Status {
    if (batch.empty()) return Status::Ok();
    if (by_rule) {
      std::vector<std::string> paths;
      for (const ObjectInfo& o : batch) paths.push_back(prefix + o.name);
      std::unordered_map<std::string, std::string> states;
      if (c != nullptr) {
        HSMFS_ASSIGN_OR_RETURN(std::string out,
                               impl_->CallRuleOn(*c, impl_->config.dmf_state_rule, paths, true));
        states = ParseDmfStateLines(out);
      } else {
        HSMFS_ASSIGN_OR_RETURN(states, impl_->QueryStates(paths));
      }
      for (ObjectInfo& o : batch) {
        auto it = states.find(prefix + o.name);
        if (it != states.end()) {
          o.hsm_state = it->second;
          o.residency = ResidencyOfDmfState(o.hsm_state);
        }
      }
    }
    return sink(std::move(batch));
  };
  GenQueryInp objs;
  objs.select = {{kColDataName, 1},       {kColDataReplNum, 1},  {kColDataSize, 1},
                 {kColDataModifyTime, 1}, {kColDataChecksum, 1}, {kColDataReplStatus, 1}};
  objs.where = {{kColCollName, EqualsCondition(full)}};
  HSMFS_RETURN_IF_ERROR(impl_->QueryAll(
      objs,
      [&](const GenQueryOut& out, Connection& c) {
        // Restored if the state rule breaks the connection: the page comes again.
        std::optional<ObjectInfo> saved = pending;
        const bool saved_good = pending_good;
        std::vector<ObjectInfo> batch;
        for (int r = 0; r < out.row_cnt; ++r) {
          const std::string* name = out.Get(r, kColDataName);
          if (name == nullptr) continue;
          auto col = [&](int column) -> std::string_view {
            const std::string* v = out.Get(r, column);
            return v ? std::string_view(*v) : std::string_view();
          };
          const bool good = col(kColDataReplStatus) == "1";
          if (pending && pending->name == *name) {
            if (pending_good || !good) continue;
          } else if (pending) {
            batch.push_back(std::move(*pending));
          }
          Impl::Avus a;
          if (auto it = avus.find(*name); it != avus.end()) a = it->second;
          const std::string size(col(kColDataSize));
          pending = impl_->FileInfo(*name, prefix + *name, std::strtoull(size.c_str(), nullptr, 10),
                                    ResolveMtime(a.mtime, col(kColDataModifyTime)),
                                    col(kColDataChecksum), std::move(a.state));
          pending_good = good;
        }
        if (out.continue_inx <= 0 && pending) {
          batch.push_back(std::move(*pending));
          pending.reset();
        }
        Status s = flush(std::move(batch), &c);
        if (!s.ok() && c.broken()) {
          pending = std::move(saved);
          pending_good = saved_good;
        }
        return s;
      },
      cancel));
  if (pending) {
    std::vector<ObjectInfo> last;
    last.push_back(std::move(*pending));
    return flush(std::move(last), nullptr);
  }
  return Status::Ok();
}

Status IrodsBackend::Stage(const ObjectPath& path, Deadline deadline) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  return StageMany({path}, deadline);
}

Status IrodsBackend::StageMany(const std::vector<ObjectPath>& paths, Deadline deadline) {
  std::vector<std::string> full;
  for (const ObjectPath& p : paths) {
    HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(p));
    full.push_back(impl_->Abs(p));
  }
  if (full.empty()) return Status::Ok();
  if (deadline.Expired(impl_->clock)) return DeadlineExceededError("stage: deadline passed");
  const BackendConfig& c = impl_->config;
  if (c.dmf_lookup == "avu") {
    // The states are cheap to know: stage only what is offline, and learn
    // which objects exist.
    HSMFS_ASSIGN_OR_RETURN(auto states, impl_->QueryStates(full));
    std::vector<std::string> offline;
    for (const std::string& f : full) {
      auto it = states.find(f);
      if (it == states.end()) {
        // Not DMF-managed, or missing: a single Stage reports the latter.
        if (full.size() == 1) HSMFS_RETURN_IF_ERROR(impl_->ObjStat(f).status());
        continue;
      }
      if (it->second == "OFL" || it->second == "PAR") offline.push_back(f);
    }
    if (offline.empty() || c.stage_rule.empty()) return Status::Ok();
    return impl_->StageRule(offline);
  }
  if (c.stage_rule.empty()) {
    if (full.size() == 1) return impl_->ObjStat(full[0]).status();
    return Status::Ok();
  }
  // rule / none: the stage rule is itself the cheapest state check (DMF
  // ignores a dmget of an online file).
  Status s = impl_->StageRule(full);
  if (s.code() != Code::kNotFound || full.size() == 1) return s;
  // One of the batch is gone: stage the others, one missing path must not
  // fail the recalls of the rest.
  std::vector<std::string> present;
  for (const std::string& f : full) {
    Result<RodsObjStat> st = impl_->ObjStat(f);
    if (st.ok() && st->obj_type == kObjTypeData) present.push_back(f);
    if (!st.ok() && st.status().code() != Code::kNotFound) return st.status();
  }
  return present.empty() ? Status::Ok() : impl_->StageRule(present);
}

Status IrodsBackend::Impl::ReadFrom(Connection& c, int fd, const std::string& full,
                                    uint64_t& offset, int out, const std::filesystem::path& dest,
                                    Hasher* hasher, const backends::ReadOptions& options) {
  Status s;
  if (offset > 0) {
    Result<int64_t> pos = c.Seek(fd, static_cast<int64_t>(offset), SEEK_SET);
    s = pos.ok() ? Status::Ok() : pos.status();
    if (s.ok() && *pos != static_cast<int64_t>(offset)) {
      s = DataLossError("read " + full + ": cannot resume at byte " + std::to_string(offset));
    }
  }
  while (s.ok()) {
    if (options.cancel->cancelled()) {
      s = CancelledError("read of " + full + " cancelled");
      break;
    }
    Result<std::string> chunk = c.ReadObject(fd, kChunk);
    if (!chunk.ok()) {
      s = chunk.status();
      break;
    }
    if (chunk->empty()) break;
    s = WriteAll(out, *chunk, dest);
    if (!s.ok()) break;
    if (hasher) hasher->Update(chunk->data(), chunk->size());
    offset += chunk->size();
    if (options.progress) options.progress(offset);
  }
  if (!c.broken()) {
    Status closed = c.CloseObject(fd);
    if (s.ok()) s = closed;
  }
  return s;
}

Status IrodsBackend::Impl::ReadOnce(const std::string& full, const std::filesystem::path& dest,
                                    const backends::ReadOptions& options) {
  const CancelToken& cancel = *options.cancel;
  std::unique_ptr<Hasher> hasher;
  if (!options.expect_checksum.empty()) {
    HSMFS_ASSIGN_OR_RETURN(ChecksumAlgo algo, AlgoOfChecksum(options.expect_checksum));
    hasher = Hasher::Create(algo);
  }
  Fd out(::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0) return ErrnoToStatus(errno, "create " + dest.string());

  Recall recall{clock.Now()};
  // The state first when it is cheap: an object known to be on tape is
  // staged without a refused open.
  if (config.dmf_lookup == "avu") {
    HSMFS_ASSIGN_OR_RETURN(std::string state, StateOf(full));
    if (state == "OFL" || state == "UNM" || state == "PAR") {
      HSMFS_RETURN_IF_ERROR(WaitOnline(full, state, cancel, recall));
    }
  }
  uint64_t offset = 0;
  int64_t failed_at = -1;  // offset of the last transport failure
  int refusals_online = 0;
  while (true) {
    if (cancel.cancelled()) return CancelledError("read of " + full + " cancelled");
    {
      Result<ConnectionPool::Lease> lease = pool.Acquire(failed_at >= 0);
      if (!lease.ok()) return lease.status();
      Connection& c = **lease;
      Result<int> fd = c.OpenObject(full, O_RDONLY);
      if (!fd.ok() && IsTransport(fd.status(), c) && failed_at != static_cast<int64_t>(offset)) {
        failed_at = static_cast<int64_t>(offset);
        continue;
      }
      if (!fd.ok() && !IsOfflineRefusal(fd.status(), c)) return fd.status();
      if (fd.ok()) {
        Status s = ReadFrom(c, *fd, full, offset, out.get(), dest, hasher.get(), options);
        if (s.ok()) break;
        if (!IsTransport(s, c) || failed_at == static_cast<int64_t>(offset)) return s;
        // Resume at the offset reached, on a new connection.
        failed_at = static_cast<int64_t>(offset);
        continue;
      }
      // Offline: the lease goes back before polling, which leases its own.
    }
    std::string state;
    if (config.dmf_lookup != "none") {
      HSMFS_ASSIGN_OR_RETURN(state, StateOf(full));
    }
    if (!state.empty() && OnDisk(state) && ++refusals_online >= 3) {
      // The refusal is not about tape: waiting would not help.
      return FailedPreconditionError("open " + full + ": refused by the site's rule although " +
                                     "its DMF state is " + state);
    }
    if (state.empty() || OnDisk(state)) state = "OFL";
    HSMFS_RETURN_IF_ERROR(WaitOnline(full, state, cancel, recall));
  }
  if (hasher) {
    const std::string got = hasher->Finish();
    if (got != options.expect_checksum) {
      return DataLossError("read " + full + ": checksum " + got + ", expected " +
                           options.expect_checksum);
    }
  }
  // Durability is the caller's: the cache commit syncs what it keeps.
  if (::close(out.release()) != 0) return ErrnoToStatus(errno, "close " + dest.string());
  return Status::Ok();
}

Status IrodsBackend::Read(const ObjectPath& path, const std::filesystem::path& dest,
                          const backends::ReadOptions& options) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  if (options.cancel->cancelled()) return CancelledError("read of " + path + " cancelled");
  return impl_->ReadOnce(impl_->Abs(path), dest, options);
}

Result<ObjectInfo> IrodsBackend::Impl::PutOnce(const std::filesystem::path& src,
                                               const std::string& full,
                                               const backends::PutOptions& options, bool fresh,
                                               bool* transport) {
  *transport = false;
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoToStatus(errno, "open " + src.string());
  Result<ConnectionPool::Lease> lease = pool.Acquire(fresh);
  if (!lease.ok()) return lease.status();
  Connection& c = **lease;
  auto fail = [&](Status s) {
    *transport = IsTransport(s, c);
    return s;
  };
  const KeyValPairs force = {{"forceFlag", ""}};
  Result<int> fd = c.CreateObject(full, 0644, force);
  if (!fd.ok() && fd.status().code() == Code::kNotFound) {
    // The parent collection is missing: create it (and its parents).
    Status made = c.CreateCollection(ParentCollection(full), true);
    if (!made.ok()) return fail(made);
    fd = c.CreateObject(full, 0644, force);
  }
  if (!fd.ok()) return fail(fd.status());
  // Both sums while sending: the server computes the scheme it is set up
  // for (sha2 here, md5 at some sites), and we compare with that one.
  std::unique_ptr<Hasher> sha = Hasher::Create(ChecksumAlgo::kSha256);
  std::unique_ptr<Hasher> md5 = Hasher::Create(ChecksumAlgo::kMd5);
  std::string buf(kChunk, '\0');
  uint64_t size = 0;
  Status s;
  while (true) {
    if (options.cancel->cancelled()) {
      s = CancelledError("put of " + full + " cancelled");
      break;
    }
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = ErrnoToStatus(errno, "read " + src.string());
      break;
    }
    if (n == 0) break;
    std::string_view data(buf.data(), static_cast<size_t>(n));
    Result<int64_t> w = c.WriteObject(*fd, data);
    if (!w.ok()) {
      s = w.status();
      break;
    }
    if (*w != n) {
      s = UnavailableError("write " + full + ": short write");
      break;
    }
    sha->Update(data.data(), data.size());
    md5->Update(data.data(), data.size());
    size += static_cast<uint64_t>(n);
    if (options.progress) options.progress(size);
  }
  if (!c.broken()) {
    Status closed = c.CloseObject(*fd);
    if (s.ok()) s = closed;
  }
  if (!s.ok()) {
    // A partial object must not pass for the file.
    if (!c.broken()) c.Unlink(full, true).IgnoreError();
    return fail(s);
  }
  const std::string ours = sha->Finish();
  const std::string ours_md5 = md5->Finish();
  Result<std::string> theirs = c.Checksum(full, true);
  if (!theirs.ok()) return fail(theirs.status());
  const std::string server = HsmChecksum(*theirs);
  if (server != ours && server != ours_md5) {
    return DataLossError("put " + full + ": iRODS checksum " + *theirs + " (" + server +
                         ") does not match the data sent (" + ours + ")");
  }
  Result<RodsObjStat> st = c.ObjStat(full);
  if (!st.ok()) return fail(st.status());
  if (static_cast<uint64_t>(st->obj_size) != size) {
    return DataLossError("put " + full + ": iRODS holds " + std::to_string(st->obj_size) +
                         " bytes, sent " + std::to_string(size));
  }
  int64_t mtime_ns = IrodsTimeToNanos(st->modify_time);
  if (options.mtime_ns != 0) {
    // Best effort: without the AVU (no permission to set metadata) the
    // object shows its upload time.
    Status avu = c.ModifyAvu("set", "-d", full, kMtimeAttr,
                             MtimeAvuValue(options.mtime_ns, st->modify_time));
    if (avu.ok()) mtime_ns = options.mtime_ns;
    if (IsTransport(avu, c)) return fail(avu);
  }
  ObjectInfo info =
      FileInfo(std::string(LastComponent(full)), full, size, mtime_ns, *theirs, std::string());
  // What the engine compares with its own sha256 (verify = "backend").
  info.checksum = ours;
  return info;
}

Result<ObjectInfo> IrodsBackend::Put(const std::filesystem::path& src, const ObjectPath& path,
                                     const backends::PutOptions& options) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  if (path.empty()) return InvalidArgumentError("put: the backend root is a collection");
  if (!options.symlink_target.empty()) {
    // iRODS has no symbolic links (the mount refuses symlink() here first).
    return NotPermittedError("put: iRODS cannot store the symbolic link " + path);
  }
  const std::string full = impl_->Abs(path);
  bool transport = false;
  Result<ObjectInfo> r = impl_->PutOnce(src, full, options, false, &transport);
  // The whole put starts again on a new connection: create with force
  // replaces whatever part of the object the first attempt wrote.
  if (!r.ok() && transport) r = impl_->PutOnce(src, full, options, true, &transport);
  if (!r.ok()) return r;
  if (impl_->config.dmf_lookup == "avu") {
    Result<std::string> state = impl_->StateOf(full);
    if (state.ok()) {
      r->hsm_state = *state;
      r->residency = ResidencyOfDmfState(*state);
    }
  }
  return r;
}

Status IrodsBackend::Remove(const ObjectPath& path) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  if (path.empty()) return InvalidArgumentError("remove: cannot remove the backend root");
  const std::string full = impl_->Abs(path);
  HSMFS_ASSIGN_OR_RETURN(RodsObjStat st, impl_->ObjStat(full));
  int attempts = 0;
  Status s = impl_->Run(
      [&](Connection& c) {
        // Collections go only when empty (kNotEmpty otherwise).
        return st.obj_type == kObjTypeColl ? c.RemoveCollection(full, false) : c.Unlink(full, true);
      },
      &attempts);
  // A removal retried after a lost connection may find its own work done.
  if (s.code() == Code::kNotFound && attempts > 1) return Status::Ok();
  return s;
}

Status IrodsBackend::Rename(const ObjectPath& from, const ObjectPath& to) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(from));
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(to));
  if (from.empty() || to.empty()) return InvalidArgumentError("rename: the backend root");
  const std::string src = impl_->Abs(from);
  const std::string dst = impl_->Abs(to);
  HSMFS_ASSIGN_OR_RETURN(RodsObjStat st, impl_->ObjStat(src));
  const bool coll = st.obj_type == kObjTypeColl;
  int attempts = 0;
  Status s = impl_->Run([&](Connection& c) { return c.Rename(src, dst, coll); }, &attempts);
  if (!s.ok() && attempts > 1 &&
      (s.code() == Code::kNotFound || s.code() == Code::kAlreadyExists)) {
    // The first attempt may have been done before its connection broke.
    Result<RodsObjStat> moved = impl_->ObjStat(dst);
    if (moved.ok() && impl_->ObjStat(src).status().code() == Code::kNotFound) return Status::Ok();
  }
  return s;
}

Status IrodsBackend::MakeDir(const ObjectPath& path, uint32_t) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  const std::string full = impl_->Abs(path);
  if (path.empty()) return AlreadyExistsError("mkdir " + full + ": the backend root");
  int attempts = 0;
  Status s = impl_->Run([&](Connection& c) { return c.CreateCollection(full, false); }, &attempts);
  if (s.code() == Code::kAlreadyExists && attempts > 1) {
    Result<RodsObjStat> st = impl_->ObjStat(full);
    if (st.ok() && st->obj_type == kObjTypeColl) return Status::Ok();
  }
  return s;
}

}  // namespace hsmfs::irods
