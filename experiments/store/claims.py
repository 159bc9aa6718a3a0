"""Claims: at most one process trains a run at a time, whoever started it (local runners, SLURM tasks, W&B agents).

A run's claim is the file ``.claim`` in its folder (readers of the store skip hidden files). ``experiments.train``
takes it before it looks at the run's checkpoints and gives it back when it stops; a pair claims both members'
folders, in name order, all or nothing. A process that finds a run claimed raises ``RunClaimed`` having written
nothing (the CLI exits with ``EXIT_CLAIMED``).

Taking a claim: the claim's content (host, boot id, pid, start time, a token) is written to a file with a unique
name, which the process locks (``fcntl.lockf``) and then hard-links to ``.claim``. ``link`` fails if ``.claim``
exists, atomically, also over NFS (success is read from the file's link count, which NFS's retried requests do not
fool), and the claim is locked before anyone can see it. The lock is held for the life of the process: the kernel
drops it when the process dies, however it dies. Every ``heartbeat`` seconds a thread touches the claim's mtime.

A claim is stale when its holder is gone:

- on the same machine (same host name and boot id): its lock can be taken (the process that held it is dead); on
  a file system without locks, its pid is gone;
- on another machine: its heartbeat (the file's mtime) is older than the TTL (``DEGRADATION_CLAIM_TTL`` seconds,
  default 300; clocks must agree to well within it).

Recovering a stale claim is serialised by the same lock: a process may remove a claim only while it holds the
lock of exactly that file (checked by inode after locking), so two processes that find one stale claim cannot
both remove it, and neither can remove the fresh claim the other then takes. A process holding a live claim's
lock (the holder) makes every other process see it as live. Claims are taken only by a run's rank-zero process;
DDP's other ranks belong to it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from experiments.errors import RunClaimed

CLAIM_FILE = ".claim"
TTL_ENV = "DEGRADATION_CLAIM_TTL"
DEFAULT_TTL_S = 300.0
ATTEMPTS = 8
"""How often one process retries taking a claim that keeps changing hands before it reports the run as claimed."""

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")
"""Set by DDP launchers (torchrun, Lightning, SLURM srun) for a run's processes: only rank zero claims the run."""


def ttl_s() -> float:
    """Seconds after its last heartbeat that a claim held on another machine counts as stale."""
    try:
        return max(1.0, float(os.environ.get(TTL_ENV, DEFAULT_TTL_S)))
    except ValueError:
        return DEFAULT_TTL_S


def heartbeat_s() -> float:
    return min(30.0, ttl_s() / 5)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


HOST = socket.gethostname()
BOOT_ID = _boot_id()


def is_rank_zero() -> bool:
    """Whether this process is a run's first (or only) process, from the variables DDP launchers set."""
    for name in RANK_VARIABLES:
        try:
            if int(os.environ.get(name, "0") or 0) != 0:
                return False
        except ValueError:
            continue
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds a claim: read from the claim file."""

    path: Path
    host: str
    pid: int | None
    started_at: str
    heartbeat_age_s: float

    def describe(self) -> str:
        return (
            f"pid {self.pid} on {self.host} since {self.started_at} (heartbeat {self.heartbeat_age_s:.0f}s ago; "
            f"claim {self.path})"
        )


def _info_text(token: str, locked: bool) -> str:
    now = time.time()
    started = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds")
    info = {"host": HOST, "boot_id": BOOT_ID, "pid": os.getpid(), "started_at": started, "started": now,
            "token": token, "locked": locked, "argv": sys.argv[:1]}  # fmt: skip
    return json.dumps(info, sort_keys=True) + "\n"


def _read_info(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 65536, 0)
        info = json.loads(data.decode("utf-8"))
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _holder(path: Path, info: dict[str, Any], mtime: float) -> Holder:
    pid = info.get("pid")
    return Holder(path, str(info.get("host", "?")), pid if isinstance(pid, int) else None,
                  str(info.get("started_at", "?")), max(0.0, time.time() - mtime))  # fmt: skip


def _same_machine(info: dict[str, Any]) -> bool:
    return info.get("host") == HOST and info.get("boot_id", "") == BOOT_ID


def _pid_alive(pid: Any) -> bool:
    """Whether a process of this machine is running (a zombie, dead but not yet reaped, is not)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :][:1] not in ("Z", "X")
    except (OSError, ValueError):
        return True


def _try_lock(fd: int, shared: bool = False) -> bool | None:
    """Take the file's lock without waiting: True if taken, False if another process holds it, None if the file
    system has no locks. ``shared`` (for a file this process may only read) still conflicts with a holder's lock."""
    try:
        fcntl.lockf(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EAGAIN):
            return False
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise


# -- this process's claims ---------------------------------------------------------------------------------------


@dataclass
class _Held:
    path: Path
    fd: int
    token: str
    created: list[Path] = field(default_factory=list)
    count: int = 1


_held: dict[str, _Held] = {}
_guard = threading.RLock()
_beat_stop: threading.Event | None = None


def _key(run_dir: Path) -> str:
    return os.path.realpath(run_dir)


def _beat(stop: threading.Event) -> None:
    """Touch every held claim's mtime each ``heartbeat_s()``; say so once if a claim was taken away."""
    warned: set[Path] = set()
    while not stop.wait(heartbeat_s()):
        with _guard:
            held = list(_held.values())
        for h in held:
            try:
                os.utime(h.fd)
                lost = os.stat(h.path).st_ino != os.fstat(h.fd).st_ino
            except OSError:
                lost = True
            if lost and h.path not in warned:
                warned.add(h.path)
                print(f"warning: the claim {h.path} is gone; another process may train this run", file=sys.stderr)


def _start_heartbeat() -> None:
    global _beat_stop
    if _beat_stop is None:
        _beat_stop = threading.Event()
        threading.Thread(target=_beat, args=(_beat_stop,), name="claim-heartbeat", daemon=True).start()


def _stop_heartbeat() -> None:
    global _beat_stop
    if _beat_stop is not None:
        _beat_stop.set()
        _beat_stop = None


def _make_dirs(run_dir: Path) -> list[Path]:
    """Create ``run_dir`` and its missing parents; returns those created, deepest first (to remove if left empty)."""
    missing = []
    probe = run_dir
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        from experiments.config import ConfigError

        raise ConfigError(
            f"out: cannot write {run_dir} ({probe} is not a writable folder); choose another --out or --runs_dir"
        )
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir()
    return missing


def _remove_empty(dirs: Sequence[Path]) -> None:
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return


def _judge(path: Path) -> Holder | None:
    """The live holder of the claim at ``path``; None once the claim is gone (it was stale and this process removed
    it, or it vanished), so the caller tries to take it again."""
    read_only = False
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    except PermissionError:  # another user's claim in a shared store: a shared lock still meets its holder's
        read_only = True
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
    try:
        st = os.fstat(fd)
        info = _read_info(fd)
        holder = _holder(path, info, st.st_mtime)
        if info.get("token") in {h.token for h in _held.values()}:
            return holder  # this process's own claim, reached by another path: its lock would not stop us
        locked = _try_lock(fd, shared=read_only)
        if locked is False:
            return holder  # its holder, or a process recovering it, holds its lock
        if _same_machine(info):
            if (locked is None or not info.get("locked")) and _pid_alive(info.get("pid")):
                return holder
        elif time.time() - st.st_mtime <= ttl_s():
            return holder
        # Stale. We hold its lock (if the file system has locks): nobody else may remove it, and it is still the
        # file at `path` if the inodes agree; move exactly that file away.
        try:
            if os.stat(path).st_ino != st.st_ino:
                return None
            grave = path.with_name(f"{CLAIM_FILE}.stale-{uuid.uuid4().hex}")
            os.rename(path, grave)
        except FileNotFoundError:
            return None
        if os.stat(grave).st_ino != st.st_ino:  # only without working locks: we moved a fresh claim; put it back
            with contextlib.suppress(FileExistsError):
                os.link(grave, path)
        os.unlink(grave)
        print(f"recovered the stale claim on {path.parent} ({holder.describe()})", file=sys.stderr)
        return None
    finally:
        os.close(fd)


def _take(run_dir: Path) -> _Held:
    created = _make_dirs(run_dir)
    path = run_dir / CLAIM_FILE
    token = uuid.uuid4().hex
    tmp = run_dir / f"{CLAIM_FILE}.{token}"
    fd = -1
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        locked = _try_lock(fd) is True
        os.write(fd, _info_text(token, locked).encode("utf-8"))
        os.fsync(fd)
        for _ in range(ATTEMPTS):
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                    raise
                os.close(fd)
                fd = -1
                tmp.unlink()
                return _take_without_links(run_dir, path, token, created)
            if os.fstat(fd).st_nlink >= 2:  # linked: also where NFS reported a retried link as failed
                tmp.unlink()
                return _Held(path, fd, token, created)
            holder = _judge(path)
            if holder is not None:
                raise RunClaimed(f"{run_dir.name} is being trained by {holder.describe()}")
        raise RunClaimed(f"{run_dir.name}: its claim changed hands {ATTEMPTS} times while this process tried")
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        _remove_empty(created)
        raise


def _take_without_links(run_dir: Path, path: Path, token: str, created: list[Path]) -> _Held:
    """Where the file system has no hard links: create ``.claim`` exclusively; its content says it is not locked
    (it is locked only after it appears), so processes on this machine judge it by its pid."""
    for _ in range(ATTEMPTS):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            holder = _judge(path)
            if holder is not None:
                raise RunClaimed(f"{run_dir.name} is being trained by {holder.describe()}") from None
            continue
        os.write(fd, _info_text(token, False).encode("utf-8"))
        os.fsync(fd)
        _try_lock(fd)
        return _Held(path, fd, token, created)
    raise RunClaimed(f"{run_dir.name}: its claim changed hands {ATTEMPTS} times while this process tried")


def _release(h: _Held) -> None:
    try:
        if os.stat(h.path).st_ino == os.fstat(h.fd).st_ino:
            os.unlink(h.path)  # before closing: we hold its lock until then, so nobody else removes or replaces it
    except FileNotFoundError:
        pass
    finally:
        os.close(h.fd)
    _remove_empty(h.created)


class Claims:
    """The claims one ``claim_runs`` holds."""

    def __init__(self, run_dirs: Sequence[Path], active: bool):
        self.run_dirs = list(run_dirs)
        self.active = active

    def move_aside(self, run_dir: Path) -> Path | None:
        """``--restart``: move the run's folder aside (``RunDir.move_aside``) and keep its claim where the run starts
        again; None if the folder holds nothing but the claim. Raises RunClaimed if another process took the run
        in between (it then trains it from step 0, as the restart asked)."""
        from experiments.store.rundir import RunDir

        run_dir = Path(run_dir)
        if not run_dir.exists() or not [p for p in run_dir.iterdir() if p.name != CLAIM_FILE]:
            return None
        target = RunDir(run_dir).move_aside()
        with _guard:
            h = _held.get(_key(run_dir)) if self.active else None
        if h is None:
            return target
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.link(target / CLAIM_FILE, h.path)
        except FileExistsError:
            raise RunClaimed(f"{run_dir.name} was claimed by another process while it was being restarted") from None
        finally:
            (target / CLAIM_FILE).unlink(missing_ok=True)
        return target


@contextlib.contextmanager
def claim_runs(run_dirs: Sequence[str | os.PathLike]) -> Iterator[Claims]:
    """Hold the claims of ``run_dirs`` (a run's member folders) for the block; raises RunClaimed, having written
    nothing, if another live process holds one. Re-entrant within a process; a no-op on ranks other than zero."""
    dirs = sorted({Path(d) for d in run_dirs}, key=lambda d: d.name)
    if not is_rank_zero():
        yield Claims(dirs, active=False)
        return
    taken: list[str] = []
    try:
        with _guard:
            for d in dirs:
                key = _key(d)
                if key in _held:
                    _held[key].count += 1
                else:
                    _held[key] = _take(d)
                    _start_heartbeat()
                taken.append(key)
        yield Claims(dirs, active=True)
    finally:
        with _guard:
            for key in reversed(taken):
                h = _held[key]
                h.count -= 1
                if h.count == 0:
                    del _held[key]
                    _release(h)
            if not _held:
                _stop_heartbeat()


def holder(run_dir: str | os.PathLike) -> Holder | None:
    """Who holds the run's claim now, or None (unclaimed, or a stale claim). Reads without locking, so it judges a
    claim on this machine by its pid: for display and reports; only taking a claim decides who trains."""
    run_dir = Path(run_dir)
    path = run_dir / CLAIM_FILE
    with _guard:
        if _key(run_dir) in _held:
            return Holder(path, HOST, os.getpid(), "now", 0.0)
    try:
        st = os.stat(path)
        with path.open("rb") as f:
            info = _read_info(f.fileno())
    except OSError:
        return None
    alive = _pid_alive(info.get("pid")) if _same_machine(info) else time.time() - st.st_mtime <= ttl_s()
    return _holder(path, info, st.st_mtime) if alive else None


__all__ = ["CLAIM_FILE", "DEFAULT_TTL_S", "TTL_ENV", "Claims", "Holder", "claim_runs", "holder", "is_rank_zero"]
