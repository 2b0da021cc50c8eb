"""Time and score mosaic reconstruction.

    python bench/bench_mosaic.py [--real] [--synthetic SEEDS] [--noise NOISE] [--pooled]

--real: the full `salt_mosaic` path on all train + test tiles of `find_tgs()` (loads from the cache; run once
before to fill it), with a timing breakdown, the summary and the mask-continuity check on train-train seams.
--synthetic: precision/recall of predicted neighbour pairs on synthetic sections (4 sections of 10x7 per seed).
--pooled: the tiles of all seeds reconstructed together in one call (more look-alike edges compete, as on real data).
"""
import argparse, os, platform, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd
from salt_nb.data import find_tgs, load_tgs, TileSet
from salt_nb.mosaic_match import edge_matches
from salt_nb.mosaic import reconstruct, all_tiles, adjacency_scores, adjacent_pairs, mosaic_summary, is_vertical_mask


def real(args):
    tgs = find_tgs()
    if tgs is None: print('skipped: no shared/tgs'); return
    load_tgs(tgs, progress=False)  # make sure the cache exists: the timing below excludes the first PNG read
    t0 = time.time(); data = load_tgs(tgs, progress=False); tiles = all_tiles(data); t1 = time.time()
    m = edge_matches(tiles.images); t2 = time.time()
    rec = reconstruct(tiles, matches=m); t3 = time.time()
    print(f"load (cached) {t1-t0:.1f} s, edge matching {t2-t1:.1f} s, assembly {t3-t2:.1f} s, total {t3-t0:.1f} s")
    print(mosaic_summary(rec, len(tiles), t3 - t0))
    masks = dict(zip(data.train.ids, data.train.masks))
    for d, name in ((1, 'vertical'), (0, 'horizontal')):
        ag = []
        for a, b, k in adjacent_pairs(rec):
            if k != d or a not in masks or b not in masks: continue
            ma, mb = masks[a], masks[b]
            if d == 0 and is_vertical_mask(np.stack([ma, mb])).any(): continue  # vertical-stripe labels break at tile edges
            ag.append((ma[-1] == mb[0]).mean() if d == 1 else (ma[:, -1] == mb[:, 0]).mean())
        ag = np.array(ag)
        print(f"{name} train-train seams: {len(ag)}, masks agree on >= 90% of the seam: {np.mean(ag >= 0.9):.3f} "
              f"({(ag >= 0.9).sum()}/{len(ag)}), exactly: {np.mean(ag == 1):.3f}")
    ntest = rec.id.isin(data.test.ids).sum()
    print(f"placed: {len(rec) - ntest} train, {ntest} test tiles")


def synthetic(args):
    from salt_nb.synth import make_synthetic
    tmp = Path(tempfile.mkdtemp()); os.environ['SALT_NB_CACHE'] = str(tmp/'cache')
    tot = dict(tp=0, n_pred=0, n_true=0); pool = []
    for seed in map(int, args.synthetic.split(',')):
        p = make_synthetic(tmp/f's{seed}', n_sections=4, section_tiles=(10, 7), test_frac=0.5, seed=seed, noise=args.noise, progress=False)
        d = load_tgs(p, progress=False); tiles = all_tiles(d)
        pos = pd.read_csv(p/'positions.csv', dtype={'id': str})
        if args.pooled: pool.append((tiles, pos.assign(section=pos.section + 100*seed))); continue
        t = time.time(); rec = reconstruct(tiles); dt = time.time() - t
        sc = adjacency_scores(rec, pos, exclude=tiles.ids[tiles.blank])
        for k in tot: tot[k] += sc[k]
        print(f"seed {seed}: {len(tiles)} tiles, placed {len(rec)} in {rec.mosaic_id.nunique()} mosaics, "
              f"precision {sc['precision']:.4f} recall {sc['recall']:.4f} ({sc['tp']}/{sc['n_true']} true pairs) {dt:.1f} s")
    if args.pooled:
        tiles = TileSet(np.concatenate([t.ids for t, _ in pool]), np.concatenate([t.images for t, _ in pool]))
        pos = pd.concat([q for _, q in pool], ignore_index=True)
        t = time.time(); rec = reconstruct(tiles); dt = time.time() - t
        tot = adjacency_scores(rec, pos, exclude=tiles.ids[tiles.blank])
        print(f"pooled: {len(tiles)} tiles in one call, placed {len(rec)} in {rec.mosaic_id.nunique()} mosaics, "
              f"{tot['n_pred'] - tot['tp']} wrong pairs, {dt:.1f} s")
    print(f"all seeds (noise {args.noise}{', pooled' if args.pooled else ''}): precision {tot['tp']/max(tot['n_pred'], 1):.4f}, "
          f"recall {tot['tp']/max(tot['n_true'], 1):.4f}")


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--real', action='store_true'); ap.add_argument('--synthetic', default='')
    ap.add_argument('--noise', type=float, default=0.3); ap.add_argument('--pooled', action='store_true')
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}")
    if args.real: real(args)
    if args.synthetic: synthetic(args)
