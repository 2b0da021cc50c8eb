"""Pool the out-of-fold predictions of runs that each held out different tiles (e.g. one `salt_train --folds K` per fold).

    python bench/pool_folds.py RUN_DIR [RUN_DIR ...] [--data ../shared/tgs] [--mosaics auto|FILE]

For each run folder (its `oof.npz`, and `metrics.json` and `postprocess.json` where present) it prints the held-out
tiles, the epochs and training minutes, the score at threshold 0.5 and with the run's own tuned post-processing. Then
the same two scores over all the runs' tiles together, with the standard error of the per-tile mean, and the spread
between runs. Runs that share a held-out tile are refused: their pooled score would count that tile twice.

`--mosaics auto` (or a `salt_mosaic` CSV) adds what `salt_predict`'s mosaic post-processing does to each run's held-out
tiles: the vertical masks of the labeled tiles the run did not hold out (its training tiles) continue along their
mosaic columns, through held-out and Kaggle test tiles, and the paired gain over the run's own post-processing is pooled with its standard error.
"""
import argparse, json, numpy as np
from salt_nb.data import load_tgs, find_tgs
from salt_nb.analysis import load_oof
from salt_nb.inference import as_float, apply_postprocess, load_postprocess
from salt_nb.metrics import precision_iou
from salt_nb.runs import RunDir
from salt_nb.mosaic import mosaic_positions, propagate_vertical

DEFAULT = dict(threshold=0.5, min_area=0)


def run_scores(run, train, test_ids=None, positions=None) -> dict:
    "Per-tile scores of one run's out-of-fold tiles at threshold 0.5, with its own post-processing (and then mosaics)."
    oof, rd = load_oof(run, train), RunDir(run)
    probs, truths = as_float(oof['probs']), oof['tiles'].masks.astype(bool)
    pp = load_postprocess(rd.postprocess) if rd.postprocess.exists() else DEFAULT
    m = json.loads(rd.metrics.read_text()) if rd.metrics.exists() else {}
    folds = sorted({int(f) for f in oof['folds']}) if oof['folds'] is not None else []
    own = apply_postprocess(probs, pp, oof['cls_probs'])
    r = dict(run=str(run), ids=oof['ids'], folds=folds, epochs=m.get('epochs'), minutes=m.get('seconds', 0) / 60,
             t05=precision_iou(apply_postprocess(probs, DEFAULT), truths), own=precision_iou(own, truths),
             pp=(pp['threshold'], pp['min_area']))
    if positions is not None:       # sources: the labeled tiles it did not hold out; walks pass through held-out and test tiles
        sources = train[np.flatnonzero(~np.isin(train.ids, oof['ids']))]
        ids = np.concatenate([oof['ids'], test_ids])
        blank = np.zeros((len(test_ids),) + own.shape[1:], own.dtype)
        new = propagate_vertical(np.concatenate([own, blank]), ids, sources, positions)[:len(own)]
        r.update(mosaics=precision_iou(new, truths), changed=int((new != own).any((1, 2)).sum()))
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('runs', nargs='+', help='run folders holding oof.npz, with disjoint held-out tiles')
    p.add_argument('--data', default=None, help='TGS folder or packed .npz (default: salt_nb.data.find_tgs())')
    p.add_argument('--mosaics', default=None, help="also score salt_predict's mosaic post-processing: auto (reconstruct) or a salt_mosaic CSV")
    a = p.parse_args()
    data = load_tgs(a.data or find_tgs(), progress=False)
    train = data.train
    try:
        pos = None if a.mosaics is None else mosaic_positions(a.mosaics, data)
        rows = [run_scores(r, train, data.test.ids, pos) for r in a.runs]
    except (FileNotFoundError, ValueError) as e: raise SystemExit(f"pool_folds: {e}") from None
    seen = {}
    for r in rows:
        for i in r['ids']:
            if i in seen: raise SystemExit(f"pool_folds: tile {i} is held out by both {seen[i]} and {r['run']}")
            seen[i] = r['run']
    print('| run | folds | tiles | epochs | training min | t=0.5 | own post-processing (threshold, min_area) |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['run']} | {','.join(map(str, r['folds']))} | {len(r['ids'])} | {r['epochs']} | {r['minutes']:.1f} "
              f"| {r['t05'].mean():.4f} | {r['own'].mean():.4f} {r['pp']} |")
    t05, own = (np.concatenate([r[k] for r in rows]) for k in ('t05', 'own'))
    n, se = len(t05), t05.std(ddof=1) / np.sqrt(len(t05)) if len(t05) > 1 else float('nan')
    print(f"pooled over {n} tiles ({n / len(train):.0%} of the {len(train)} labeled): t=0.5 {t05.mean():.4f} "
          f"(standard error {se:.4f}), own post-processing {own.mean():.4f}")
    s = np.array([r['t05'].mean() for r in rows])
    print(f"between runs at t=0.5: {s.min():.4f} to {s.max():.4f} (mean of runs {s.mean():.4f})")
    if pos is None: return
    for r in rows:
        print(f"mosaics, {r['run']}: {r['changed']} held-out tile(s) changed, own post-processing {r['own'].mean():.4f} "
              f"-> {r['mosaics'].mean():.4f}")
    d = np.concatenate([r['mosaics'] - r['own'] for r in rows])
    se = d.std(ddof=1) / np.sqrt(n) if n > 1 else float('nan')
    print(f"pooled with mosaic post-processing ({len(pos)} tiles placed): {own.mean() + d.mean():.4f} "
          f"(gain {d.mean():+.4f}, standard error {se:.4f})")


if __name__ == '__main__': main()
