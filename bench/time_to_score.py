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
held out): a point on the learning curve. `--pseudo TEST_PROBS.npz` adds the confidently predicted test tiles of
`salt_predict --probs` to the training tiles (never to the held-out fold): the pseudo-labelling experiment.
`--ema 0.999,0.9995` also keeps moving averages of the weights with those decays (`salt_nb.learner.WeightEMA`, from
the end of the warm-up) and scores each, BatchNorm recomputed, beside the final model: a paired comparison, one run.
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
    p.add_argument('--config', default=None, help="preset name or YAML file (salt_nb.train.get_config); default: salt_train's "
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
    p.add_argument('--pseudo', default=None, help='test probabilities (.npz of salt_predict --probs) to pseudo-label from')
    p.add_argument('--pseudo-lo', type=float, default=0.2, help='pseudo-label pixels must be below this probability ...')
    p.add_argument('--pseudo-hi', type=float, default=0.8, help='... or above this one')
    p.add_argument('--pseudo-min-frac', type=float, default=1.0, help='... for at least this fraction of its pixels')
    p.add_argument('--pseudo-max', type=int, default=0, help='use at most this many pseudo-labelled tiles (a seeded random sample; 0: all)')
    p.add_argument('--ema', default='', help='comma-separated decays of weight moving averages to keep and score, e.g. 0.999,0.9995')
    p.add_argument('--ema-start', type=int, default=None, help='epoch the averages start at (default: the end of the warm-up)')
    p.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE', help='config overrides (YAML values), e.g. bs=64 geometry=resize96')
    a = p.parse_args(argv)
    t0 = time.time()
    from salt_nb.data import load_tgs, find_tgs
    from salt_nb.train import (get_config, make_folds, fit_budget, scale_schedule, train_kfold, ScoreCurve, schedule_epochs,
                               stage_ends, BudgetReplan, rank, init_distrib)
    from salt_nb.runs import RunDir, keep_freed_memory
    keep_freed_memory()                             # as salt_train does
    if a.threads: torch.set_num_threads(a.threads)
    init_distrib(a.device, verbose=True)           # joins the process group when a launcher started several processes
    from salt_nb.learner import WeightEMA
    try: decays = [WeightEMA(float(d)).decay for d in a.ema.split(',') if d.strip()]
    except ValueError as e: sys.exit(f'time_to_score: --ema {a.ema!r}: {e}')
    data = a.data or find_tgs()
    if data is None: sys.exit('time_to_score: no TGS data found (set $SALT_NB_TGS or pass --data)')
    from salt_nb.train import read_groups
    from salt_nb.inference import load_probs, pseudo_extra, with_pseudo
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
    n_pseudo = 0
    if a.pseudo:
        extra = pseudo_extra(sd.test, load_probs(a.pseudo), lo=a.pseudo_lo, hi=a.pseudo_hi, min_frac=a.pseudo_min_frac)
        n_conf = len(extra)
        if a.pseudo_max and n_conf > a.pseudo_max:
            extra = extra[np.sort(np.random.default_rng(42).choice(n_conf, a.pseudo_max, replace=False))]
        ts, folds, _ = with_pseudo(ts, folds, extra)
        n_pseudo = len(extra)
        if not rank(): print(f"pseudo-labels: {n_conf} of {len(sd.test)} test tiles confidently predicted ({a.pseudo_min_frac:.0%} of pixels < "
              f"{a.pseudo_lo} or > {a.pseudo_hi}); {n_pseudo} used, {int(extra.masks.any((1, 2)).sum())} of them with salt", flush=True)
    if a.epochs: cfg = scale_schedule(cfg, a.epochs)
    else: cfg = fit_budget(cfg, ts, n_valid, 1, a.minutes, t0, a.device)
    ema_start = (cfg.warmup_epochs if cfg.schedule == 'recipe' else 0) if a.ema_start is None else a.ema_start
    if decays and not 0 <= ema_start < schedule_epochs(cfg):
        sys.exit(f'time_to_score: --ema-start {ema_start} must be an epoch of the run (0 to {schedule_epochs(cfg) - 1})')
    out = Path(a.out or f"runs/tts_{cfg.name}_{int(a.minutes)}m")
    dev = torch.device(a.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    if not rank(): print(f"time_to_score: {cfg.name} ({cfg.model}, {cfg.geometry}, bs {cfg.bs}, {schedule_epochs(cfg)} epochs, "
          f"stage ends {stage_ends(cfg)}) on {len(ts) - n_valid}/{n_valid} tiles, {dev}, {torch.get_num_threads()} threads", flush=True)
    ema_path = lambda d: out/'checkpoints'/f'fold0_ema{d:g}.pth'
    emas = [lambda data, valid, c, d=d: WeightEMA(d, ema_start, ema_path(d), c) for d in decays]
    m = train_kfold(ts, cfg, out, folds, [0], device=a.device, progress=False, quiet=True, overwrite=True,
                    cbs=[ScoreCurve.factory(every=a.every, t0=t0, verbose=True)] + emas
                        + ([] if a.epochs else [BudgetReplan(t0 + a.minutes * 60)]))
    if rank(): return {}                                # the other processes only helped to train
    cfg = RunDir(out).load_config()                     # as trained: a budget re-plan may have resized the cycles
    f0 = m['folds'][0]
    wall = time.time() - t0
    ema_scores = {f'{d:g}': score_ema(ema_path(d), ts, folds == 0, cfg, a.device) for d in decays}
    res = dict(config=cfg.to_dict(), budget_minutes=None if a.epochs else a.minutes, wall_minutes=round(wall / 60, 2),
               curve=f0.get('curve'), final=dict(score_t05=f0['score'], score_tuned=m['oof']['score_tuned'],
                                                  score_cv_tuned=m['oof']['score_cv_tuned'], postprocess=m['oof']['postprocess'],
                                                  model=str(f0['checkpoint'])),
               ema=dict(start=ema_start, scores=ema_scores) if decays else None, groups=a.groups, drop_folds=drop, pseudo=a.pseudo, n_pseudo=n_pseudo, train_img_per_s=f0['train_img_per_s'], epochs=f0['epochs'], n_train=f0['n_train'], n_valid=f0['n_valid'],
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
    for d, r in ema_scores.items():
        print(f"moving average of the weights, decay {d} (from epoch {ema_start}, BatchNorm recomputed): {r['score_t05']:.4f} at "
              f"threshold 0.5, {r['score_tuned']:.4f} tuned (threshold {r['threshold']}, min_area {r['min_area']}), "
              f"{r['score_cv_tuned']:.4f} cross-validated tuned")
    return res


def score_ema(path, ts, is_valid, cfg, device=None) -> dict:
    "Scores of a `WeightEMA` checkpoint on the held-out tiles, its BatchNorm statistics recomputed on the training tiles."
    from salt_nb.learner import salt_dls, swa_average
    from salt_nb.inference import predict_probs, tune_postprocess, cv_tuned_score
    from salt_nb.metrics import competition_metric
    valid = np.flatnonzero(is_valid)
    dls = salt_dls(ts.images, ts.masks, ts.depths, valid, cfg, device=device)
    model = swa_average([path], dls)
    probs, cls = predict_probs(model, ts.images[valid], cfg, tta=cfg.tta, bs=max(cfg.bs, 64), device=dls.device, progress=False)
    truth = ts.masks[valid]
    pp = tune_postprocess(probs, truth, cls)
    return dict(score_t05=float(competition_metric(probs > 0.5, truth)), score_tuned=pp['score_oof'], threshold=pp['threshold'],
                min_area=pp['min_area'], score_cv_tuned=cv_tuned_score(probs, truth, cls)['score'])


if __name__ == '__main__': main()
