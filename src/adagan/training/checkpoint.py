"""Files of a run: training states for exact resume and network snapshots, both safetensors + JSON.

A state file (`training-state-NNNNNNNNN.safetensors`, numbered by cur_nimg) holds G, D, G_ema and
every part of the TrainState (training/state.py), saved whole: a part's tensors go into the file
under `<part>.<key>` (`opt_G.3.exp_avg`, `loss.pl_mean`), everything else into its JSON metadata
(`progress`, `augment`, `sampler`, `opt_G.param_groups`). Writes are atomic; old states are pruned.
A snapshot (`network-snapshot-NNNNNN.safetensors`, numbered by kimg) holds the networks and augment p, and
the network the run started from (`meta.resumed_from`, when it had `--resume`).

`RunFiles` is one process's view of a run directory (docs/limits.md, "Crash safety"): it holds the run's
lock (one training per directory), removes the temporaries a killed run left (our names only), resumes
from the newest *intact* state (naming each damaged one it skips, which it never deletes), and prunes
only states of this same run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from adagan.config import TrainConfig
from adagan.errors import AdaganError, CheckpointError, ConfigError
from adagan.files import temp_pattern
from adagan.netfiles import load_extra_tensors, load_networks, read_metadata, save_networks
from adagan.presets import same_run
from adagan.training.state import TrainState

STATE_RE = re.compile(r"^training-state-(\d+)\.safetensors$")
KEEP_STATES = 3
# Temporaries that files.atomic_write leaves for the files of a run (`.<name>.<random>.tmp`), and the one name
# that versions before it used for stats.jsonl.
RUN_FILES = (r"network-snapshot-\d+\.safetensors|training-state-\d+\.safetensors|fakes(\d+|_init)\.png|reals\.png|"
             r"report\.(png|html)|config\.json|stats\.jsonl")
TEMP_RE = re.compile(temp_pattern(RUN_FILES) + r"|^stats\.jsonl\.tmp$")
LOCK_NAME = ".lock"
MAX_NIMG = 2**53  # progress counters beyond this are not from a real run


def state_path(run_dir: Path, cur_nimg: int) -> Path:
    return Path(run_dir) / f"training-state-{cur_nimg:09d}.safetensors"


def snapshot_path(run_dir: Path, cur_nimg: int) -> Path:
    return Path(run_dir) / f"network-snapshot-{cur_nimg // 1000:06d}.safetensors"


def list_states(run_dir: Path) -> list[Path]:
    """State files, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := STATE_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def snapshot_nimg(path: Path) -> int | None:
    """cur_nimg recorded in an existing snapshot; None when there is none (or it cannot be read)."""
    if not path.is_file():
        return None
    try:
        nimg = read_metadata(path).get("meta.cur_nimg")
    except (AdaganError, OSError, ValueError):
        return None
    return nimg if isinstance(nimg, int) else None


def newest_snapshot(run_dir: Path) -> str | None:
    snaps = sorted(Path(run_dir).glob("network-snapshot-[0-9]*.safetensors"))
    return str(snaps[-1]) if snaps else None


def save_snapshot(run_dir: Path, state: TrainState, config: TrainConfig) -> Path:
    """network-snapshot for the current kimg: G, D, G_ema, augment p and the config."""
    return _write([_snapshot_file(run_dir, state)], state, config)[0]


def save(run_dir: Path, state: TrainState, config: TrainConfig, keep: int | None = KEEP_STATES) -> Path:
    """Write the whole training state; keep the newest `keep` state files (None: delete none; RunFiles.save_state
    prunes only the states of its own run)."""
    path = _write([_state_file(run_dir, state)], state, config)[0]
    for old in list_states(run_dir)[:-keep] if keep else []:
        old.unlink(missing_ok=True)
    return path


def _snapshot_file(run_dir: Path, state: TrainState) -> tuple[Path, dict, dict]:
    """(path, extra tensors, metadata) of the snapshot of the current kimg."""
    cur_nimg = state.progress.cur_nimg
    p = state.controller.p if state.controller is not None else 0.0
    meta = {"kimg": cur_nimg / 1000, "cur_nimg": cur_nimg}
    if state.origin.network is not None:  # what the run started from (netfiles.trained_kimg adds it up)
        meta["resumed_from"] = state.origin.state_dict()
    return snapshot_path(run_dir, cur_nimg), {"augment_p": torch.tensor(p)}, meta


def _state_file(run_dir: Path, state: TrainState) -> tuple[Path, dict, dict]:
    """(path, extra tensors, metadata) of the training state: every part, tensors apart from JSON."""
    path = state_path(run_dir, state.progress.cur_nimg)
    tensors, meta = state.flat_state_dict()
    return path, tensors, meta


def _write(files: list[tuple[Path, dict, dict]], state: TrainState, config: TrainConfig) -> list[Path]:
    """Each (path, extras, metadata) as a network file holding the state's networks, atomically, in order."""
    for path, tensors, meta in files:
        save_networks(path, **state.networks, config=config, extra_tensors=tensors, metadata=meta)
    return [path for path, _, _ in files]


def load(path: Path, state: TrainState) -> None:
    """Restore `state` (networks included) from a state file written by `save`; CheckpointError (before
    anything is changed, for every damage we can see without loading) when it is not usable."""
    try:
        nets = load_networks(path, tuple(state.networks))
        meta = {k[len("meta."):]: v for k, v in read_metadata(path).items() if k.startswith("meta.")}
        tensors = load_extra_tensors(path)
        _upgrade(tensors, meta)
        _check_parts(tensors, meta)
        for name, net in state.networks.items():
            net.load_state_dict(nets[name].state_dict(), strict=True)
        state.load_flat_state_dict(tensors, meta)
    except CheckpointError as e:  # the caller names the file
        raise CheckpointError(str(e).replace(f"{path}: ", "").replace(f"{path} ", "the file ")) from None
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError, IndexError) as e:
        raise CheckpointError(f"not a usable training state ({type(e).__name__}: {str(e)[:200]})") from None


def resume_newest(run_dir: Path, state: TrainState, skipped=None) -> Path | None:
    """Load the newest state file of run_dir that loads into `state` and return its path; None when none
    does. skipped(path, error) hears of each damaged state passed over (RunFiles names them in the log)."""
    for path in reversed(list_states(run_dir)):
        try:
            load(path, state)
        except CheckpointError as e:
            if skipped is not None:
                skipped(path, e)
            continue
        return path
    return None


def _check_parts(tensors: dict, meta: dict) -> None:
    """The JSON parts whose damage would only show later (a counter that is a string, p outside [0, 1])."""
    prog = meta.get("progress")
    if not isinstance(prog, dict) or not all(type(prog.get(k)) is int and 0 <= prog[k] <= MAX_NIMG
                                             for k in ("cur_nimg", "cur_tick", "batch_idx")):
        raise ValueError(f"damaged progress metadata {str(prog)[:80]}")
    sampler = meta.get("sampler", {})
    if not isinstance(sampler, dict) or type(sampler.get("position", 0)) is not int or sampler.get("position", 0) < 0:
        raise ValueError(f"damaged sampler metadata {str(sampler)[:80]}")
    augment = meta.get("augment", {})
    p = augment.get("p", 0.0) if isinstance(augment, dict) else None
    if not isinstance(p, int | float) or isinstance(p, bool) or not 0 <= p <= 1:
        raise ValueError(f"damaged augment metadata {str(augment)[:80]}")
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} holds NaN or infinite values")


def _upgrade(tensors: dict, meta: dict) -> None:
    """States written before TrainState named two parts differently; read them as today's."""
    if "pl_mean" in tensors:
        tensors["loss.pl_mean"] = tensors.pop("pl_mean")
    if "sampler_position" in meta:
        meta["sampler"] = {"position": meta.pop("sampler_position")}


class RunFiles:
    """One process's hold on a run directory: the lock, crash leftovers, resume and pruning of states.

    Only the main process creates one. `open()` takes the lock (a second `adagan train` on the same
    directory is refused), checks that the directory is writable and removes our temporaries a killed
    run left behind. `resume()` loads the newest intact state, skipping (and naming) damaged ones.
    `save_state()` writes a state (after the kimg's snapshot when asked) and deletes older states of this
    same run only: never a state it skipped as damaged, nor one whose header says another run (other learned
    settings) wrote it.
    """

    def __init__(self, run_dir: Path, config: TrainConfig, log=print):
        self.run_dir, self.config, self.log = Path(run_dir), config, log  # log: set again once log.txt is open
        self.notes: list[str] = []  # what open() did, for the log
        self.damaged: dict[Path, str] = {}
        self.written: set[Path] = set()
        self._lock = None

    def open(self) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ConfigError(f"cannot write in the run directory {self.run_dir} ({e.strerror or e}); make it "
                              "writable, or train elsewhere with --outdir") from None
        self._lock = os.fdopen(fd, "r+")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                other = self._lock.read().strip() or "?"
                self.close()
                raise ConfigError(f"another `adagan train` (pid {other}) is training in {self.run_dir}; wait for "
                                  "it to finish, or pass --new for a separate run") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(str(os.getpid()))
        self._lock.flush()
        left = sorted(p for p in self.run_dir.iterdir() if TEMP_RE.match(p.name) and p.is_file()
                      and not p.is_symlink())
        for p in left:
            p.unlink()
        if left:
            self.notes.append(f"Removed {len(left)} temporary file(s) that an interrupted run left: "
                              f"{', '.join(p.name for p in left[:4])}{', ...' if len(left) > 4 else ''}")

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    def resume(self, state: TrainState) -> Path | None:
        """Load the newest state that loads (`resume_newest`); None when there is none at all. CheckpointError
        when every state is damaged (naming each)."""

        def skipped(path: Path, e: CheckpointError) -> None:
            self.damaged[path] = str(e)
            self.log(f"Skipped the damaged training state {path.name} ({e}); it is left in place, delete it "
                     "once you no longer need it.")

        path = resume_newest(self.run_dir, state, skipped)
        if path is None and self.damaged:
            listed = "; ".join(f"{p.name}: {why}" for p, why in self.damaged.items())
            raise CheckpointError(f"no intact training state in {self.run_dir} ({listed[:400]}); move the damaged "
                                  "files away to start this run over, or pass --new for a fresh run")
        return path

    def save_state(self, state: TrainState, keep: int = KEEP_STATES, *, snapshot: bool = False) -> Path:
        """Write the training state (after the kimg's network snapshot when `snapshot`) and prune this run's
        older states; a damaged state of the same name is moved aside first, never overwritten."""
        path = state_path(self.run_dir, state.progress.cur_nimg)
        if path in self.damaged and path.exists():
            aside = path.with_name(path.name + ".damaged")
            os.replace(path, aside)
            self.log(f"Kept the damaged {path.name} as {aside.name}; this run writes a new state under its name.")
        files = [_snapshot_file(self.run_dir, state)] if snapshot else []
        files.append(_state_file(self.run_dir, state))
        _write(files, state, self.config)
        self.written.add(path)
        ours = [p for p in list_states(self.run_dir) if p in self.written or self._same_run(p)]
        for old in ours[:-keep]:
            old.unlink(missing_ok=True)
            self.written.discard(old)
        return path

    def _same_run(self, path: Path) -> bool:
        """Whether a state's header says this run wrote it: the same learned settings (not a damaged one)."""
        if path in self.damaged:
            return False
        try:
            theirs = read_metadata(path).get("train_config")
        except CheckpointError:
            return False
        return same_run(theirs, self.config)
