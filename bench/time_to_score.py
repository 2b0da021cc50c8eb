"""Time to score: train a config for a wall-clock budget on a fixed split of the TGS labeled tiles and print the
validation score (flip TTA, tuned threshold) against training time.

The split is fold 0 of `salt_nb.train.make_folds` with 5 folds and seed 42: a coverage-stratified 2400/600 split of
the 3000 labeled tiles, the same tiles `salt_train DATA --out RUN` holds out with its default config. The schedule is
sized to the budget exactly as `salt_train --minutes` does (measured step time, the cycles re-planned from the
warm-up's real epochs, never cut mid-way), and the score is
taken at the end of every stage of the schedule (and every `--every` epochs). Runs unchanged on a CPU or a GPU, and
data-parallel under a launcher as `salt_train` does (rank 0 scores and prints), e.g. two gloo processes on a CPU:
`OMP_NUM_THREADS=1 accelerate launch --multi_gpu --num_processes 2 bench/time_to_score.py --device cpu --set bs=8 ...`

    python bench/time_to_score.py --config cpu_small --minutes 30 --out runs/tts_cpu_small

`--groups mosaics.csv` holds out fold 0 of mosaic-grouped folds instead (tiles of one mosaic never straddle the
split: the leak-free estimate). `--drop-folds 1` leaves fold 1 out of training (1800 of the 2400 tiles, the same 600
held out): a point on the learning curve.
"""
from __future__ import annotations
import os, sys, time, json, argparse, platform
from pathlib import Path
import numpy as np, torch


def parse_set(items) -> dict:
    "KEY=VALUE config overrides: YAML values, except text for the config's text fields (`channels_last=off` stays 'off')."
    import dataclasses, yaml
    from salt_nb.runs import RunConfig
    text = {f.name for f in dataclasses.fields(RunConfig) if f.type == 'str'}
    out = {}
    for item in items:
        k, sep, v = item.partition('=')
        if not sep: raise ValueError(f"override {item!r} is not KEY=VALUE")
        out[k] = v if k in text else yaml.safe_load(v)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', default=None, help="preset name or YAML file (salt_nb.runs.get_config); default: salt_train's "
                   "for this machine (cpu_small, or cpu_fp32 on a CPU without native bf16)")
    p.add_argument('--minutes', type=float, default=30, help='wall-clock budget for the whole run (sizes the schedule)')
    p.add_argument('--epochs', type=int, default=None, help='fixed number of epochs instead of a budget')
    p.add_argument('--out', default=None, help='run folder (default: runs/tts_<config>_<minutes>m)')
    p.add_argument('--data', default=None, help='TGS folder or packed .npz (default: salt_nb.data.find_tgs())')
    p.add_argument('--every', type=int, default=0, help='also score every N epochs (0: stage ends only)')
    p.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--groups', default=None, help='CSV of id,mosaic_id (salt_mosaic): hold out fold 0 of grouped folds')
    p.add_argument('--drop-folds', default='', help='comma-separated folds (1-4) left out of training, e.g. 1: a learning-curve point')
    p.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE', help='config overrides (YAML values), e.g. bs=64 geometry=resize96')
    a = p.parse_args(argv)
    t0 = time.time()
    from salt_nb.data import load_tgs, find_tgs
    from salt_nb.runs import RunDir, get_config, default_device
    from salt_nb.mosaic import read_groups
    from salt_nb.schedules import scale_schedule, schedule_epochs, stage_ends
    from salt_nb.distrib import rank, setup_process
    from salt_nb.budget import fit_budget, BudgetReplan
    from salt_nb.train import make_folds, train_kfold, ScoreCurve
    setup_process(a.device, a.threads)             # as salt_train does: memory, threads, the data-parallel group
    data = a.data or find_tgs()
    if data is None: sys.exit('time_to_score: no TGS data found (set $SALT_NB_TGS or pass --data)')
    sd = load_tgs(data, progress=False)
    ts = sd.train
    try: over = parse_set(a.set)
    except ValueError as e: sys.exit(f'time_to_score: --set: {e}')
    cfg = get_config(a.config, a.device, **{'folds': [0], 'n_folds': 5, 'seed': 42, **over})   # --set seed=N: another training seed, same split
    folds = make_folds(ts, 5, 42, read_groups(a.groups, ts.ids) if a.groups else None)
    n_valid = int((folds == 0).sum())
    drop = [k.strip() for k in a.drop_folds.split(',') if k.strip()]
    if not set(drop) <= {'1', '2', '3', '4'}: sys.exit(f'time_to_score: --drop-folds takes folds 1-4, got {a.drop_folds!r}')
    drop = sorted(int(k) for k in drop)
    if drop:
        keep = ~np.isin(folds, drop)
        ts, folds = ts[np.flatnonzero(keep)], folds[keep]
        if not rank(): print(f"learning curve: folds {drop} left out, {int((folds != 0).sum())} training tiles", flush=True)
    if a.epochs: cfg = scale_schedule(cfg, a.epochs)
    else: cfg = fit_budget(cfg, ts, n_valid, 1, a.minutes, t0, a.device)
    out = Path(a.out or f"runs/tts_{cfg.name}_{int(a.minutes)}m")
    dev = default_device(a.device)
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    if not rank(): print(f"time_to_score: {cfg.name} ({cfg.model}, {cfg.geometry}, bs {cfg.bs}, {schedule_epochs(cfg)} epochs, "
          f"stage ends {stage_ends(cfg)}) on {len(ts) - n_valid}/{n_valid} tiles, {dev}, {torch.get_num_threads()} threads", flush=True)
    m = train_kfold(ts, cfg, out, folds, [0], device=a.device, progress=False, quiet=True, overwrite=True,
                    cbs=[ScoreCurve.factory(every=a.every, t0=t0, verbose=True)]
                        + ([] if a.epochs else [BudgetReplan(t0 + a.minutes * 60)]))
    if rank(): return {}                                # the other processes only helped to train
    cfg = RunDir(out).load_config()                     # as trained: a budget re-plan may have resized the cycles
    f0 = m['folds'][0]
    wall = time.time() - t0
    res = dict(config=cfg.to_dict(), budget_minutes=None if a.epochs else a.minutes, wall_minutes=round(wall / 60, 2),
               curve=f0.get('curve'), final=dict(score_t05=f0['score'], score_tuned=m['oof']['score_tuned'],
                                                  score_cv_tuned=m['oof']['score_cv_tuned'], postprocess=m['oof']['postprocess'],
                                                  model=str(f0['checkpoint'])),
               groups=a.groups, drop_folds=drop, train_img_per_s=f0['train_img_per_s'], epochs=f0['epochs'], n_train=f0['n_train'], n_valid=f0['n_valid'],
               device=str(dev), gpu=torch.cuda.get_device_name() if dev.type == 'cuda' else None,
               peak_gpu_mem_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2) if dev.type == 'cuda' else None,
               threads=torch.get_num_threads(), cpu=platform.processor() or platform.machine(), host=platform.node(),
               date=time.strftime('%Y-%m-%d %H:%M'), load_avg=os.getloadavg() if hasattr(os, 'getloadavg') else None)
    (out/'time_to_score.json').write_text(json.dumps(res, indent=1, default=str))
    print(f"\n{'train min':>9} {'epoch':>5} {'stage':>5} {'score(t=0.5)':>12} {'score(tuned)':>12} {'thr':>5}")
    for r in res['curve'] or []:
        print(f"{r['minutes']:9.2f} {r['epoch']:5d} {'end' if r['stage_end'] else '':>5} {r['score_t05']:12.4f} {r['score']:12.4f} {r['threshold']:5.2f}")
    print(f"final model ({Path(f0['checkpoint']).name}): {f0['score']:.4f} at threshold 0.5, {m['oof']['score_tuned']:.4f} tuned "
          f"(threshold {m['oof']['postprocess']['threshold']}, min_area {m['oof']['postprocess']['min_area']}), "
          f"{m['oof']['score_cv_tuned']:.4f} cross-validated tuned; "
          f"{f0['train_img_per_s']:.1f} train img/s over the run (validation included); wall {wall / 60:.1f} min"
          + (f"; peak GPU memory {res['peak_gpu_mem_gb']} GB" if res['peak_gpu_mem_gb'] else ''))
    return res


if __name__ == '__main__': main()
