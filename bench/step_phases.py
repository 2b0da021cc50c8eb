"""Where a training step's time goes, through the project's own pipeline (salt_dls, salt_learner, the config's loss):
milliseconds per tile spent in the data loader, the forward pass, the loss, the backward pass and the optimiser step.

    python bench/step_phases.py cpu_fp32 cpu_small [--steps 24] [--reps 2] [--data DIR]
    python bench/step_phases.py cpu_fp32 cpu_fp32:channels_last=off cpu_fp32:bs=32

Each argument is a preset or YAML file, optionally with `:key=value,key=value` overrides (as time_to_score.py's --set;
commas inside a YAML mapping or list do not split: `cpu_fp32:model_kwargs={scse: false, up: nearest}`). The configs
are timed in turn, `--reps` rounds of them, so a machine whose speed drifts (a shared VM) hurts them alike; each
round is one epoch of `--steps` batches on the first labeled tiles (every tile drawn: `empty_frac` 1), the median
over its batches after 3 warm-up batches. The Lovasz-stage loss of a `recipe` config is timed (its longest stage).
"""
from __future__ import annotations
import argparse, os, platform, sys, tempfile, time
from pathlib import Path
import numpy as np, torch
from fastai.callback.core import Callback
sys.path.insert(0, str(Path(__file__).parent))
from time_to_score import parse_set

PHASES = ('data', 'forward', 'loss', 'backward', 'step', 'total')


class PhaseTimer(Callback):
    "Seconds of each phase of every training batch (the data phase: from the end of one batch to the start of the next)."
    order = -30
    def __init__(self): self.times, self.t_end = {k: [] for k in PHASES}, None
    def before_batch(self):
        now = time.perf_counter()
        if self.training and self.t_end is not None: self.times['data'].append(now - self.t_end)
        self.t0 = self.t_lap = now
    def _lap(self, k):
        if self.training: now = time.perf_counter(); self.times[k].append(now - self.t_lap); self.t_lap = now
    def after_pred(self): self._lap('forward')
    def after_loss(self): self._lap('loss')
    def after_backward(self): self._lap('backward')
    def after_step(self): self._lap('step')
    def after_batch(self):
        if self.training: self.times['total'].append(time.perf_counter() - self.t0); self.t_end = time.perf_counter()
    def per_tile_ms(self, bs: int, skip: int = 3) -> dict:
        return {k: 1000 * float(np.median(v[skip:] or v)) / bs for k, v in self.times.items() if v}


def split_overrides(over: str) -> list[str]:
    "'a=1,b={c: 2, d: 3}' -> ['a=1', 'b={c: 2, d: 3}']: commas inside YAML brackets do not split."
    items, depth, cur = [], 0, ''
    for ch in over:
        depth += (ch in '{[') - (ch in '}]')
        if ch == ',' and depth == 0: items.append(cur); cur = ''
        else: cur += ch
    return [kv for kv in items + [cur] if kv]

def parse(spec: str):
    "A RunConfig from 'preset_or_yaml[:key=value,...]'."
    from salt_nb.runs import get_config
    name, _, over = spec.partition(':')
    return get_config(name, **parse_set(split_overrides(over))).replace(empty_frac=1.)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('configs', nargs='+', help="presets or YAML files, each optionally ':key=value,...'")
    p.add_argument('--steps', type=int, default=24, help='training batches per round (the first 3 are not counted)')
    p.add_argument('--reps', type=int, default=2, help='rounds over all configs')
    p.add_argument('--data', default=None, help='TGS folder or packed .npz (default: salt_nb.data.find_tgs())')
    p.add_argument('--threads', type=int, default=None)
    a = p.parse_args(argv)
    from salt_nb.data import load_tgs, find_tgs
    from salt_nb.dataloaders import salt_dls
    from salt_nb.learner import salt_learner
    from salt_nb.runs import keep_freed_memory
    keep_freed_memory()                             # as salt_train does
    if a.threads: torch.set_num_threads(a.threads)
    data = a.data or find_tgs()
    if data is None: sys.exit('step_phases: no TGS data found (set $SALT_NB_TGS or pass --data)')
    try: cfgs = {s: parse(s) for s in a.configs}
    except (ValueError, FileNotFoundError) as e: sys.exit(f'step_phases: {e}')
    ts = load_tgs(data, progress=False).train
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per tile, median of each round's batches")
    print('| config | round | ' + ' | '.join(PHASES) + ' | img/s |'); print('|---' * (len(PHASES) + 3) + '|')
    for r in range(a.reps):
        for spec, cfg in cfgs.items():
            n = cfg.bs * a.steps
            idx = np.resize(np.arange(len(ts)), n + cfg.bs)           # tiny datasets: repeat tiles
            dls = salt_dls(ts.images[idx], ts.masks[idx], None, np.arange(n, n + cfg.bs), cfg, device='cpu')
            loss = cfg.lovasz_loss if cfg.schedule == 'recipe' else cfg.loss
            with tempfile.TemporaryDirectory() as tmp:
                learn = salt_learner(dls, cfg, loss=loss, run_dir=tmp, progress=False)
                learn.logger = lambda *a, **k: None
                timer = PhaseTimer()
                learn.fit(1, cfg.lr / 10, cbs=[timer])
            ms = timer.per_tile_ms(cfg.bs)
            print(f"| {spec} | {r + 1} | " + ' | '.join(f"{ms.get(k, 0):.2f}" for k in PHASES) + f" | {1000 / ms['total']:.1f} |",
                  flush=True)


if __name__ == '__main__': main()
