"""Shared state of the HPSS emulator (hsi and htar): a TEST FIXTURE.

The namespace is a local directory ($HPSS_EMU_ROOT); per-file tape placement,
staged flags, counters and fault bookkeeping live in $HPSS_EMU_STATE (SQLite,
so concurrent hsi/htar processes stay consistent). See README.md for the
contract the HPSS backend relies on.
"""

import hashlib
import json
import os
import posixpath
import re
import sqlite3
import sys
import time


def _env_float(name, default):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        config_error(f"{name} must be a number, got '{raw}'")


def norm(path):
    """posixpath.normpath, but '//x' is '/x' (HPSS has no special '//')."""
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def config_error(msg):
    tool = os.path.basename(sys.argv[0])
    sys.stderr.write(f"{tool} (HPSS emulator): {msg}\n")
    sys.exit(2)


class Env:
    def __init__(self):
        self.root = os.environ.get("HPSS_EMU_ROOT", "")
        self.state = os.environ.get("HPSS_EMU_STATE", "")
        if not self.root:
            config_error("HPSS_EMU_ROOT is not set (the directory holding the HPSS namespace)")
        if not self.state:
            config_error("HPSS_EMU_STATE is not set (the emulator's state directory)")
        if not os.path.isdir(self.root):
            config_error(f"HPSS_EMU_ROOT {self.root} is not a directory")
        self.root = os.path.abspath(self.root)
        os.makedirs(self.state, exist_ok=True)
        self.state = os.path.abspath(self.state)
        self.home = norm("/" + os.environ.get("HPSS_EMU_HOME", "/"))
        self.recall_delay = _env_float("HPSS_EMU_RECALL_DELAY", 0.0)
        self.mount_delay = _env_float("HPSS_EMU_MOUNT_DELAY", 0.0)
        self.seek_delay = _env_float("HPSS_EMU_SEEK_DELAY", 0.0)
        self.capacity = max(1, int(_env_float("HPSS_EMU_TAPE_CAPACITY", 100)))
        self.put_staged = os.environ.get("HPSS_EMU_PUT_STAGED", "1") != "0"
        self.default_staged = os.environ.get("HPSS_EMU_DEFAULT_STAGED", "0") == "1"
        try:
            import grp
            import pwd

            user = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
        except (KeyError, ImportError):
            user, group = str(os.getuid()), str(os.getgid())
        self.user = os.environ.get("HPSS_EMU_USER", user)
        self.group = os.environ.get("HPSS_EMU_GROUP", group)

    def local(self, hpss_path):
        """Local path of an absolute, normalized HPSS path."""
        return self.root + ("" if hpss_path == "/" else hpss_path)


class State:
    """Per-file placement and flags, counters; one SQLite file."""

    def __init__(self, env):
        self.env = env
        self.db = sqlite3.connect(os.path.join(env.state, "state.db"), timeout=60, isolation_level=None)
        # Several sessions may start at once on a new state.db: switching it to
        # WAL does not wait on SQLite's busy handler and can fail with "database
        # is locked" (seen as an hsi that exits 1 mid-session). Retry that.
        deadline = time.monotonic() + 60
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(
                    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, volume TEXT,"
                    " section INTEGER, staged INTEGER, md5 TEXT)"
                )
                self.db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER)")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._layout = None

    def _layout_overrides(self):
        if self._layout is None:
            self._layout = {}
            path = os.path.join(self.env.state, "layout")
            if os.path.exists(path):
                with open(path) as f:
                    for line in f:
                        parts = line.split("#", 1)[0].split()
                        if len(parts) == 3:
                            self._layout[posixpath.normpath(parts[0])] = (parts[1], int(parts[2]))
        return self._layout

    def bump(self, name):
        """Increments a global counter and returns its new value."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
            value = (row[0] if row else 0) + 1
            self.db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?)", (name, value))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        if name == "commands":
            with open(os.path.join(self.env.state, "cmd_counter"), "w") as f:
                f.write(f"{value}\n")
        return value

    def _new_slot(self):
        slot = self.bump("arrivals") - 1
        return f"EM{slot // self.env.capacity:04d}00", slot % self.env.capacity + 1

    def info(self, path, staged_if_new=None):
        """(volume, section, staged, md5) of a file, placing it if unseen."""
        row = self.db.execute("SELECT volume, section, staged, md5 FROM files WHERE path=?", (path,)).fetchone()
        if row is None:
            staged = self.env.default_staged if staged_if_new is None else staged_if_new
            volume, section = self._new_slot()
            self.db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, NULL)", (path, volume, section, int(staged))
            )
            row = (volume, section, int(staged), None)
        override = self._layout_overrides().get(path)
        if override:
            row = (override[0], override[1], row[2], row[3])
        return {"volume": row[0], "section": row[1], "staged": bool(row[2]), "md5": row[3]}

    def stored(self, path, md5=None):
        """A new copy was written (put, htar): new tape placement."""
        volume, section = self._new_slot()
        self.db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
            (path, volume, section, int(self.env.put_staged), md5),
        )

    def set_staged(self, path, staged):
        self.info(path)
        self.db.execute("UPDATE files SET staged=? WHERE path=?", (int(staged), path))

    def set_md5(self, path, md5):
        self.info(path)
        self.db.execute("UPDATE files SET md5=? WHERE path=?", (md5, path))

    def removed(self, path):
        self.db.execute("DELETE FROM files WHERE path=? OR path LIKE ?", (path, path.rstrip("/") + "/%"))

    def renamed(self, old, new):
        self.removed(new)
        rows = self.db.execute(
            "SELECT path FROM files WHERE path=? OR path LIKE ?", (old, old.rstrip("/") + "/%")
        ).fetchall()
        for (p,) in rows:
            self.db.execute("UPDATE files SET path=? WHERE path=?", (new + p[len(old) :], p))


class Session:
    """One process = one session: it mounts tapes and seeks on them."""

    def __init__(self, env, state, tool, argv):
        self.env = env
        self.state = state
        self.tool = tool
        self.pid = os.getpid()
        self.id = f"{self.pid}-{int(time.time() * 1000)}"
        self.mounted = None
        self.last_section = 0
        self.seq = 0
        self.log({"event": "start", "argv": argv, "time": time.time()})

    def log(self, record):
        record = dict({"tool": self.tool, "pid": self.pid, "session": self.id}, **record)
        line = json.dumps(record) + "\n"
        fd = os.open(os.path.join(self.env.state, "calls.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def recall(self, path, nostage=False):
        """Reads a file from 'tape' if not staged: returns a log entry."""
        info = self.state.info(path)
        entry = {
            "hpss": path,
            "volume": info["volume"],
            "position": f"{info['section']}+0",
            "staged_before": info["staged"],
            "delay": 0.0,
        }
        if info["staged"]:
            return entry
        delay = self.env.recall_delay
        if self.mounted != info["volume"]:
            delay += self.env.mount_delay
            entry["mount"] = True
        elif info["section"] < self.last_section:
            delay += self.env.seek_delay
            entry["seek_back"] = True
        self.mounted = info["volume"]
        self.last_section = info["section"]
        if delay > 0:
            time.sleep(delay)
        entry["delay"] = round(delay, 6)
        if not nostage:
            self.state.set_staged(path, True)
        return entry


class Fault:
    def __init__(self, spec):
        self.spec = spec.strip()
        self.action = "error"
        self.tool = None
        self.nth = None
        self.times = None
        self.code = None
        self.match = None
        rest = self.spec
        while rest:
            rest = rest.lstrip()
            if rest.startswith("match="):
                self.match = re.compile(rest[len("match=") :])
                break
            token, _, rest = rest.partition(" ")
            key, _, value = token.partition("=")
            if key == "action":
                self.action = value
            elif key == "tool":
                self.tool = value
            elif key == "nth":
                self.nth = int(value)
            elif key == "times":
                self.times = int(value)
            elif key == "code":
                self.code = int(value)
            elif token:
                config_error(f"bad fault rule token '{token}' in '{self.spec}'")
        if self.action not in ("error", "error-exit0", "exit", "hang", "short"):
            config_error(f"bad fault action '{self.action}' in '{self.spec}'")


def load_faults(env):
    specs = []
    path = os.path.join(env.state, "faults")
    if os.path.exists(path):
        with open(path) as f:
            specs += [line.split("#", 1)[0] for line in f]
    specs += os.environ.get("HPSS_EMU_FAULTS", "").split(";")
    return [Fault(s) for s in specs if s.strip()]


def check_faults(faults, state, tool, text):
    """Counts one command; returns the fault that fires for it, if any."""
    number = state.bump("commands")
    for index, fault in enumerate(faults):
        if fault.tool and fault.tool != tool:
            continue
        if fault.nth is not None and fault.nth != number:
            continue
        if fault.match is not None and not fault.match.search(text):
            continue
        if fault.times is not None and state.bump(f"fault:{fault.spec}") > fault.times:
            continue
        return fault
    return None


def hang_forever():
    while True:
        time.sleep(3600)


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
