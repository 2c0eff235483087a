"""SGD and its variants on an in-memory data set, with checkpoints, resumption and divergence
handling.

One run = one grid point; its optimizer (plain SGD, momentum, Nesterov, Adam) is the grid
axis ``optimizer`` (:mod:`sgdtail.optim` gives the updates). The whole training set lives in
one tensor on the device; minibatches are drawn by a seeded ``torch.Generator`` as epochs of
random permutations (the last partial batch of an epoch is dropped, like a
shuffled DataLoader with ``drop_last``). Nothing in the hot loop synchronises
with the device except the periodic divergence check.

Files written into the run folder (all atomically):

- ``checkpoints.pt``: ``{"steps": LongTensor[n], "state_dicts": {str(step): state_dict}}``;
  with an optimizer other than plain SGD also ``"optimizer"`` (its name) and
  ``"optimizer_states": {str(step): the optimizer's state_dict at that step}``
- ``checkpoint_metrics.csv``: step, lr, train/test loss and accuracy over the full splits
- ``train_log.csv``: step, lr, minibatch loss and accuracy, every SGD step
- ``run.json``: status (completed, converged, diverged), steps done, the step of
  divergence, the resolved configuration, data hash, provenance (package versions; CUDA,
  cuDNN and the GPU model on a GPU) and timings
- ``resume.pt`` (not an output): the full training state (the optimizer's included), saved every
  ``resume_every`` steps, at each checkpoint and on SIGTERM/SIGUSR1 (then the
  run stops with :class:`TrainingInterrupted`), and removed on success. A run
  killed at any point restarts from it and ends bit-identical (on CPU) to an
  uninterrupted run.

Progress lines (step / total, minibatch loss and accuracy, steps per second,
ETA) go to the log every ``progress.seconds`` or ``progress.steps``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from sgdtail import io
from sgdtail.data import PreparedData
from sgdtail.grid import DEFAULT_OPTIMIZER
from sgdtail.losses import get_loss
from sgdtail.models import build_model, count_parameters
from sgdtail.optim import build_optimizer, cpu_state, set_lr

log = logging.getLogger(__name__)

STATUS_COMPLETED = "completed"
STATUS_CONVERGED = "converged"
STATUS_DIVERGED = "diverged"


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one run (grid axes plus the training section of config);
    ``optimizer_settings``: the optimizer's keys of the training section
    (:func:`sgdtail.grid.optimizer_settings`)."""

    dataset: str
    arch: str
    width: int
    depth: int
    batch_size: int
    lr: float
    loss: str
    seed: int
    iterations: int
    checkpoints: tuple[int, ...]
    lr_schedule: str = "constant"
    stop_at_train_accuracy: float | None = None
    eval_batch_size: int = 5000
    resume_every: int = 1000
    divergence_check_every: int = 100
    optimizer: str = DEFAULT_OPTIMIZER
    optimizer_settings: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Hash of every field: a resume file is only used by the run that wrote it. A
        plain-SGD run hashes without the optimizer fields, as before they existed (its
        resume files stay valid)."""
        fields = dataclasses.asdict(self)
        if self.optimizer == DEFAULT_OPTIMIZER and not self.optimizer_settings:
            del fields["optimizer"], fields["optimizer_settings"]
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error.

    On CUDA, TF32 is switched off for matrix products and convolutions: cuDNN
    uses it by default, and its 10-bit mantissa moves the weights away from the
    CPU's within a few hundred SGD steps (docs/benchmarks.md), while the study
    needs float32 arithmetic on every device.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                "training.device is 'cuda' but no CUDA device is visible; set training.device: auto"
            )
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch.device(name)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for the update that produces step ``step + 1``."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "halve":
        halvings = int(step >= cfg.iterations / 3) + int(step >= 2 * cfg.iterations / 3)
        return cfg.lr * 0.5**halvings
    raise ValueError(f"training.lr_schedule {cfg.lr_schedule!r}: allowed constant, halve")


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> tuple[float, float]:
    """Mean loss and accuracy over (x, y), in eval mode, in chunks of ``batch_size``."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        out = model(xb)
        total_loss += loss_fn(out, yb).double() * len(xb)
        correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    return total_loss.item() / len(x), correct.item() / len(x)


class MinibatchSampler:
    """Epochs of seeded random permutations of ``range(n)``, cut into batches of ``b``."""

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device):
        if batch_size > n:
            raise ValueError(
                f"batch_size {batch_size} is larger than the training set ({n} images); "
                "lower batch_size in the grid"
            )
        self.n, self.b, self.device = n, batch_size, device
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(n, generator=self.generator)
        self.pos = 0

    def next(self) -> torch.Tensor:
        """Indices of the next minibatch (on the data's device)."""
        if self.pos + self.b > self.n:
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.b]
        self.pos += self.b
        return idx.to(self.device, non_blocking=True)

    def state(self) -> dict:
        return {"perm": self.perm.clone(), "pos": self.pos, "gen": self.generator.get_state()}

    def load_state(self, state: dict) -> None:
        self.perm, self.pos = state["perm"], int(state["pos"])
        self.generator.set_state(state["gen"])


def _cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class TrainingInterrupted(RuntimeError):
    """Training stopped on SIGTERM or SIGUSR1 after saving its resume state."""


def _format_seconds(seconds: float) -> str:
    """``1h02m03s``, ``4m05s`` or ``6s``."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    h, m = s // 3600, s // 60 % 60
    return f"{h}h{m:02d}m{s % 60:02d}s" if h else (f"{m}m{s % 60:02d}s" if m else f"{s}s")


class Progress:
    """When to write a progress line: every ``seconds`` of wall time, or every ``every``
    items (steps, products, sweep points) when ``every`` > 0, whichever comes first."""

    def __init__(self, seconds: float = 30.0, every: int = 0):
        self.seconds, self.every = float(seconds), int(every)
        self.last = time.perf_counter()

    def due(self, count: int) -> bool:
        """True (and the clock restarted) when item ``count`` should be reported."""
        now = time.perf_counter()
        if (self.every > 0 and count % self.every == 0) or now - self.last >= self.seconds:
            self.last = now
            return True
        return False


class _StopSignals:
    """Records SIGTERM/SIGUSR1 while installed (main thread only) instead of dying at once."""

    SIGNALS = ("SIGTERM", "SIGUSR1")

    def __init__(self):
        self.received: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> _StopSignals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self.previous[sig] = signal.signal(sig, self._record)
        return self

    def _record(self, signum, frame) -> None:
        self.received = signum

    def __exit__(self, *exc) -> None:
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@dataclass
class _Run:
    """The fixed parts of one run: configuration, data, model, optimizer (None: plain SGD),
    sampler, device buffers."""

    cfg: TrainConfig
    data: PreparedData
    device: torch.device
    resume_path: Path
    loss_fn: Callable
    model: torch.nn.Module
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer | None
    sampler: MinibatchSampler
    checkpoints: frozenset[int]
    losses_dev: torch.Tensor  # (iterations,) minibatch losses, on the device
    accs_dev: torch.Tensor  # (iterations,) minibatch accuracies, on the device


def _build_run(cfg: TrainConfig, data: PreparedData, out: Path, device: torch.device) -> _Run:
    """The model initialised from ``cfg.seed``, in train mode on ``device``, and its sampler."""
    loss_fn = get_loss(cfg.loss)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, cfg.width, cfg.depth, data.input_shape, data.num_classes)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    return _Run(
        cfg=cfg,
        data=data,
        device=device,
        resume_path=out / "resume.pt",
        loss_fn=loss_fn,
        model=model,
        params=params,
        optimizer=build_optimizer(cfg.optimizer, params, cfg.optimizer_settings),
        sampler=MinibatchSampler(len(data.x_train), cfg.batch_size, cfg.seed, device),
        checkpoints=frozenset(cfg.checkpoints),
        losses_dev=torch.empty(cfg.iterations, device=device),
        accs_dev=torch.empty(cfg.iterations, device=device),
    )


@dataclass
class _RunState:
    """What a run has done so far: what ``resume.pt`` saves and the run folder records."""

    step_loss: torch.Tensor  # (iterations,) float32 on the CPU; NaN for steps not copied yet
    step_acc: torch.Tensor
    step: int = 0  # SGD steps done
    flushed: int = 0  # steps whose loss and accuracy are in step_loss / step_acc
    state_dicts: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    optimizer_states: dict[str, dict] = field(default_factory=dict)  # per checkpoint
    metrics: list[dict] = field(default_factory=list)  # one row per checkpoint
    status: str = STATUS_COMPLETED
    diverged_at: int | None = None
    resumed_from: int | None = None
    elapsed_before: float = 0.0  # seconds trained before this process took the run over
    clock_start: float = field(default_factory=time.perf_counter)

    @classmethod
    def fresh(cls, iterations: int) -> _RunState:
        """The state before the first step."""
        return cls(
            step_loss=torch.full((iterations,), float("nan"), dtype=torch.float32),
            step_acc=torch.full((iterations,), float("nan"), dtype=torch.float32),
        )

    def elapsed(self) -> float:
        """Seconds trained, across resumptions."""
        return self.elapsed_before + time.perf_counter() - self.clock_start


StepHook = Callable[[_Run, _RunState], None]
"""Called with the run and its state at the first step and after every step (read only)."""


def _no_hook(run: _Run, state: _RunState) -> None:
    """The :data:`StepHook` that does nothing."""


def load_resume(run: _Run, state: _RunState) -> None:
    """Continue from ``resume.pt`` when it was written by this configuration and data:
    the model, optimizer, sampler and random number generators, and ``state``, as they were
    saved."""
    if not run.resume_path.exists():
        return
    saved = io.load_torch(run.resume_path)
    same_data = saved.get("data") == run.data.content_hash
    if saved.get("fingerprint") != run.cfg.fingerprint() or not same_data:
        log.warning("ignoring %s: written by a different configuration or data", run.resume_path)
        return
    run.model.load_state_dict(saved["model"])
    if run.optimizer is not None:
        run.optimizer.load_state_dict(saved["optimizer"])
        state.optimizer_states = saved["optimizer_states"]
    run.sampler.load_state(saved["sampler"])
    torch.set_rng_state(saved["torch_rng"])
    if run.device.type == "cuda" and "cuda_rng" in saved:  # dropout masks on the GPU
        torch.cuda.set_rng_state(saved["cuda_rng"], run.device)
    step = state.step = int(saved["step"])
    state.state_dicts = saved["state_dicts"]
    state.metrics = json.loads(saved["metrics"])
    state.step_loss[:step] = saved["step_loss"][:step]
    state.step_acc[:step] = saved["step_acc"][:step]
    state.elapsed_before = float(saved["elapsed"])
    state.resumed_from = step
    log.info("resuming from step %d (%s)", step, run.resume_path)


def save_resume(run: _Run, state: _RunState) -> None:
    """Write the full training state at the current step to ``resume.pt`` (atomically)."""
    step, device = state.step, run.device
    optimizer = (
        {}
        if run.optimizer is None
        else {"optimizer": cpu_state(run.optimizer), "optimizer_states": state.optimizer_states}
    )
    io.save_torch(
        run.resume_path,
        {
            "fingerprint": run.cfg.fingerprint(),
            "data": run.data.content_hash,
            "step": step,
            "model": _cpu_state_dict(run.model),
            "sampler": run.sampler.state(),
            "torch_rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
            "state_dicts": state.state_dicts,
            "metrics": json.dumps(state.metrics),
            "step_loss": state.step_loss[:step].clone(),
            "step_acc": state.step_acc[:step].clone(),
            "elapsed": state.elapsed(),
            **optimizer,
        },
    )


def checkpoint(run: _Run, state: _RunState) -> bool:
    """Evaluate and keep the weights (and the optimizer's state) at the current step; True
    when the accuracy target is reached (training should stop)."""
    model, data, cfg, step = run.model, run.data, run.cfg, state.step
    model.eval()
    train_loss, train_acc = evaluate(
        model, run.loss_fn, data.x_train, data.y_train, cfg.eval_batch_size
    )
    test_loss, test_acc = evaluate(
        model, run.loss_fn, data.x_test, data.y_test, cfg.eval_batch_size
    )
    model.train()
    state.state_dicts[str(step)] = _cpu_state_dict(model)
    if run.optimizer is not None:
        state.optimizer_states[str(step)] = cpu_state(run.optimizer)
    state.metrics.append(
        {
            "step": step,
            "lr": lr_at(step, cfg),
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
        }
    )
    log.info("step %d: train acc %.4f, test acc %.4f", step, train_acc, test_acc)
    target = cfg.stop_at_train_accuracy
    return target is not None and train_acc >= target


def _flush(run: _Run, state: _RunState) -> bool:
    """Copy the losses logged since the last flush to the CPU; on a non-finite one mark the
    run diverged and return True."""
    start, step = state.flushed, state.step
    if step <= start:
        return False
    state.step_loss[start:step] = run.losses_dev[start:step].cpu()
    state.step_acc[start:step] = run.accs_dev[start:step].cpu()
    bad = (~torch.isfinite(state.step_loss[start:step])).nonzero()
    state.flushed = step
    if not len(bad):
        return False
    state.status, state.diverged_at = STATUS_DIVERGED, start + int(bad[0]) + 1
    log.warning("loss is not finite at step %d: run diverged", state.diverged_at)
    return True


def _sgd_step(run: _Run, step: int) -> None:
    """The optimizer's update that produces step ``step + 1`` (plain SGD: one
    ``_foreach_add_``); its minibatch loss and accuracy stay on the device
    (``run.losses_dev[step]``, ``run.accs_dev[step]``)."""
    params = run.params
    lr = lr_at(step, run.cfg)
    idx = run.sampler.next()
    xb, yb = run.data.x_train[idx], run.data.y_train[idx]
    logits = run.model(xb)
    loss = run.loss_fn(logits, yb)
    for p in params:
        p.grad = None
    loss.backward()
    with torch.no_grad():
        if run.optimizer is None:
            torch._foreach_add_(params, [p.grad for p in params], alpha=-lr)
        else:
            set_lr(run.optimizer, lr)
            run.optimizer.step()
        run.losses_dev[step] = loss.detach()
        run.accs_dev[step] = (logits.argmax(1) == yb).float().mean()


def _after_step(run: _Run, state: _RunState) -> bool:
    """Divergence check, checkpoint and resume file after a step; True to stop."""
    cfg, step = run.cfg, state.step
    at_checkpoint = step in run.checkpoints
    at_resume = step % cfg.resume_every == 0
    periodic = step == cfg.iterations or step % cfg.divergence_check_every == 0
    if (at_checkpoint or at_resume or periodic) and _flush(run, state):
        return True
    stop = False
    if at_checkpoint and checkpoint(run, state):
        state.status = STATUS_CONVERGED
        stop = True
    if at_checkpoint or at_resume:
        save_resume(run, state)
    return stop


def _report(run: _Run, state: _RunState, start_step: int) -> None:
    """One progress line: step / total, minibatch loss and accuracy, steps/s, ETA."""
    step, total = state.step, run.cfg.iterations
    rate = (step - start_step) / max(time.perf_counter() - state.clock_start, 1e-9)
    eta = (total - step) / rate if rate > 0 else math.inf
    log.info(
        "progress: step %d/%d (%.1f%%), minibatch loss %.4g, accuracy %.3f, %.1f steps/s, ETA %s",
        step,
        total,
        100 * step / total,
        float(run.losses_dev[step - 1]),
        float(run.accs_dev[step - 1]),
        rate,
        _format_seconds(eta),
    )


def _interrupt(run: _Run, state: _RunState, signum: int) -> None:
    """Save the resume state at the current step and raise :class:`TrainingInterrupted`
    (unless the steps not yet checked diverged: then return, and the run ends diverged)."""
    import signal

    if _flush(run, state):
        return
    save_resume(run, state)
    name, step, path = signal.Signals(signum).name, state.step, run.resume_path
    log.error(
        "interrupted by %s at step %d/%d: resume state saved to %s; rerun to resume from step %d",
        name,
        step,
        run.cfg.iterations,
        path,
        step,
    )
    raise TrainingInterrupted(
        f"training interrupted by {name} at step {step}; {path} holds "
        f"the state: rerun (Snakemake retries it) to resume from step {step}"
    )


def _train(
    run: _Run, state: _RunState, signals: _StopSignals, progress: Progress, hook: StepHook
) -> None:
    """Optimizer steps until the last one, divergence, the accuracy target or a stop signal;
    ``hook`` is called at the first step and after each step's checks."""
    state.flushed = start_step = state.step
    state.clock_start = time.perf_counter()
    stop = state.step in run.checkpoints and state.resumed_from is None and checkpoint(run, state)
    hook(run, state)
    while state.step < run.cfg.iterations and not stop:
        _sgd_step(run, state.step)
        state.step += 1
        stop = _after_step(run, state)
        hook(run, state)
        if state.status == STATUS_DIVERGED:
            break
        if signals.received is not None and not stop:  # a run that just converged ends
            _interrupt(run, state, signals.received)
            break
        if progress.due(state.step):
            _report(run, state, start_step)
    if state.status != STATUS_DIVERGED and stop and state.step == 0:
        state.status = STATUS_CONVERGED


def _write_run_folder(run: _Run, state: _RunState, out: Path) -> dict:
    """Write checkpoints.pt, checkpoint_metrics.csv, train_log.csv and run.json; remove
    resume.pt; return run.json's content."""
    cfg, status, diverged_at = run.cfg, state.status, state.diverged_at
    elapsed = state.elapsed()
    last = state.step if status != STATUS_DIVERGED else diverged_at - 1
    steps = sorted(int(s) for s in state.state_dicts)
    optimizer = (
        {}
        if run.optimizer is None
        else {"optimizer": cfg.optimizer, "optimizer_states": state.optimizer_states}
    )
    io.save_torch(
        out / "checkpoints.pt",
        {
            "steps": torch.tensor(steps, dtype=torch.int64),
            "state_dicts": state.state_dicts,
            **optimizer,
        },
    )
    io.write_table(out / "checkpoint_metrics.csv", pd.DataFrame(state.metrics))
    n_logged = cfg.iterations if status != STATUS_DIVERGED else diverged_at
    io.write_table(
        out / "train_log.csv",
        pd.DataFrame(
            {
                "step": range(1, n_logged + 1),
                "lr": [lr_at(s, cfg) for s in range(n_logged)],
                "loss": state.step_loss[:n_logged].numpy(),
                "accuracy": state.step_acc[:n_logged].numpy(),
            }
        ).dropna(subset=["accuracy"]),
    )
    info = {
        "status": status,
        "steps_done": last,
        "diverged_at": diverged_at,
        "resumed_from": state.resumed_from,
        "checkpoints_saved": steps,
        "n_parameters": count_parameters(run.model),
        "config": dataclasses.asdict(cfg),
        "data_hash": run.data.content_hash,
        "device": str(run.device),
        "threads": torch.get_num_threads(),
        "seconds": elapsed,
        "steps_per_second": (last / elapsed) if elapsed > 0 and last else math.nan,
        "provenance": io.provenance(run.device),
    }
    io.write_json(out / "run.json", info)
    run.resume_path.unlink(missing_ok=True)
    return info


def train_sgd(
    cfg: TrainConfig,
    data: PreparedData,
    out_dir: str | Path,
    device: torch.device,
    progress: Progress | None = None,
    hook: StepHook | None = None,
) -> dict:
    """Train ``cfg`` (its optimizer) on ``data``; write the run folder; return run.json's content.

    Resumes from ``resume.pt`` when present.  ``progress`` (default: every 30 s) says when to
    log a progress line (step / total, minibatch loss and accuracy, steps per second, ETA).
    SIGTERM or SIGUSR1 (the SLURM profile asks for one before the walltime) makes it save
    ``resume.pt`` at the current step and raise :class:`TrainingInterrupted`: a rerun resumes
    from that step and ends bit-identical (on CPU) to an uninterrupted run. ``hook(run, state)``
    (e.g. :class:`sgdtail.iterates.WindowSnapshots`) sees the state at the first step and after
    every step; it must not change it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = _build_run(cfg, data, out, device)
    state = _RunState.fresh(cfg.iterations)
    with _StopSignals() as signals:
        load_resume(run, state)
        _train(run, state, signals, progress or Progress(), hook or _no_hook)
    return _write_run_folder(run, state, out)
