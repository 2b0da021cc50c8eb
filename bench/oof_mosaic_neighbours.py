"""What labeled mosaic neighbours say about a run's validation tiles, and a threshold rule built on them.

    python bench/oof_mosaic_neighbours.py RUN_DIR [--data ../shared/tgs]

RUN_DIR holds `oof.npz` and `postprocess.json` (a `time_to_score.py` or `salt_train` run). Positions are
reconstructed from all train + test tiles. For each validation tile next to a training-fold tile (the model has
seen its mask), the facing edge of that neighbour (its bottom row for the tile above, ...) is compared with the
tile's true and predicted edges; then tiles next to a salty labeled edge get a lower threshold, and the score
change is printed for each (edge fraction, threshold) pair. First it prints the reach of any mosaic context: how
much of the score the validation tiles lose, by kind of truth, and how much of it on tiles with a mosaic neighbour
of any kind (train or test): the most that neighbour-aware inputs or rules could win back.
"""
import argparse, numpy as np, pandas as pd
from salt_nb.data import load_tgs, find_tgs
from salt_nb.mosaic import mosaic_positions
from salt_nb.analysis import load_oof
from salt_nb.inference import load_postprocess, apply_postprocess, as_float
from salt_nb.metrics import precision_iou
from salt_nb.runs import RunDir

# the edge of a tile that faces its neighbour at (dx, dy): the neighbour above (0, -1) faces it with its bottom row
FACING = {(0, -1): lambda m: m[-1], (0, 1): lambda m: m[0], (-1, 0): lambda m: m[:, -1], (1, 0): lambda m: m[:, 0]}

def neighbour_edges(vid, val, pred, probs, sc, train, pos) -> pd.DataFrame:
    "One row per (validation tile, labeled neighbour): the neighbour's facing edge and the tile's own edges."
    trn = {i: m for i, m in zip(train.ids, train.masks) if i not in set(vid)}
    cell = {(g, x, y): i for i, g, x, y in pos[['id', 'mosaic_id', 'x', 'y']].itertuples(index=False)}
    where = {i: c for c, i in cell.items()}
    rows = []
    for k, i in enumerate(vid):
        if i not in where: continue
        g, x, y = where[i]
        for (dx, dy), f in FACING.items():
            j = cell.get((g, x + dx, y + dy))
            if j in trn:
                rows.append(dict(id=i, k=k, nb_edge=f(trn[j]).mean(), true_edge=FACING[(-dx, -dy)](val.masks[k]).mean(),
                                 pred_edge=FACING[(-dx, -dy)](pred[k]).mean(), true_cov=val.masks[k].mean(),
                                 pred_cov=pred[k].mean(), score=sc[k], pmax=probs[k].max()))
    return pd.DataFrame(rows)

def context_reach(vid, val, sc, pos) -> pd.DataFrame:
    "Score lost (1 - score, summed) per kind of truth, in all and on the tiles with a mosaic neighbour (any tile)."
    cell = {(g, x, y) for g, x, y in pos[['mosaic_id', 'x', 'y']].itertuples(index=False)}
    where = {i: (g, x, y) for i, g, x, y in pos[['id', 'mosaic_id', 'x', 'y']].itertuples(index=False)}
    nb = np.array([i in where and any((where[i][0], where[i][1] + dx, where[i][2] + dy) in cell for dx, dy in FACING)
                   for i in vid])
    cov, border = val.masks.mean((1, 2)), np.array([any(f(m).any() for f in FACING.values()) for m in val.masks])
    kinds = {'all': cov >= 0, 'empty': cov == 0, 'salt under 10%': (cov > 0) & (cov < 0.1),
             'salt under 10%, on the border': (cov > 0) & (cov < 0.1) & border, 'salt 10% or more': cov >= 0.1}
    return pd.DataFrame([dict(truth=k, tiles=s.sum(), lost=(1 - sc[s]).sum(), tiles_with_neighbour=(s & nb).sum(),
                              lost_with_neighbour=(1 - sc[s & nb]).sum()) for k, s in kinds.items()]).set_index('truth').round(1)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('run'); p.add_argument('--data', default=None)
    a = p.parse_args()
    d = load_tgs(a.data or find_tgs(), progress=False); pos = mosaic_positions('auto', d)
    oof = load_oof(a.run); pp = load_postprocess(RunDir(a.run).postprocess)
    vid = np.asarray(oof['ids']).astype(str); probs = as_float(oof['probs'])
    val = d.train[d.train.index(vid)]; pred = apply_postprocess(probs, pp); sc = precision_iou(pred, val.masks)
    print("score lost by the validation tiles, and on those with a mosaic neighbour (train or test):")
    print(context_reach(vid, val, sc, pos).to_string())
    df = neighbour_edges(vid, val, pred, probs, sc, d.train, pos)
    if not len(df): print(f"{len(vid)} validation tiles, none next to a labeled tile in a mosaic: nothing to measure"); return
    print(f"{len(vid)} validation tiles, {np.isin(vid, pos.id).sum()} in mosaics, {df.id.nunique()} next to a labeled tile ({len(df)} edges)")
    print(f"score {sc.mean():.4f}; on the tiles with a labeled neighbour {sc[df.k.unique()].mean():.4f}")
    if len(df) > 1: print(f"correlation of the neighbour's facing edge with the true edge {np.corrcoef(df.nb_edge, df.true_edge)[0, 1]:.3f}, "
          f"with the predicted edge {np.corrcoef(df.nb_edge, df.pred_edge)[0, 1]:.3f}")
    g = df.groupby('id').agg(nb=('nb_edge', 'max'), true_cov=('true_cov', 'first'), pred_cov=('pred_cov', 'first'),
                             score=('score', 'first'), pmax=('pmax', 'first'))
    g['truth'] = np.where(g.true_cov > 0, 'salt', 'empty'); g['pred'] = np.where(g.pred_cov > 0, 'salt', 'empty')
    g['nb_salt'] = g.nb > 0.05
    print(g.groupby(['nb_salt', 'truth', 'pred']).agg(n=('score', 'size'), score=('score', 'mean'), pmax=('pmax', 'median')).round(3))
    miss = (g.truth == 'salt') & (g.pred == 'empty')
    print(f"missed salt tiles: {int((val.masks.any((1, 2)) & ~pred.any((1, 2))).sum())} in all, {miss.sum()} next to a labeled "
          f"tile, {(miss & g.nb_salt).sum()} of them with salt on its facing edge")
    ev = df.groupby('k').nb_edge.max()
    for e0 in (0.0, 0.3, 0.6):
        ks = ev.index[ev > e0].to_numpy()
        for t in (0.25, 0.3, 0.35, 0.4, 0.45):
            p2 = pred.copy(); p2[ks] = apply_postprocess(probs[ks], dict(pp, threshold=t))
            s2 = precision_iou(p2, val.masks); ch = (p2[ks] != pred[ks]).any((1, 2))
            print(f"neighbour edge > {e0}, threshold {t}: {len(ks)} tiles, {ch.sum()} changed, score {sc.mean():.4f} -> "
                  f"{s2.mean():.4f} (changed tiles {sc[ks][ch].sum():.1f} -> {s2[ks][ch].sum():.1f})")

if __name__ == '__main__': main()
