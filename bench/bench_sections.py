"""Whole-section prediction on this machine: backend speed, section/cube seconds, synthetic scores, in-section vs alone on real tiles.

    python bench/bench_sections.py speed [--n 512] [--model RUN]       # torch vs ONNX Runtime tiles/s, default model, flip TTA
    python bench/bench_sections.py sizes [--model RUN] [--backend auto] # seconds for a 2000x1000 section and a 200x200x400 cube
    python bench/bench_sections.py synth --model DEMO_RUN [--out DIR]   # pixel IoU + competition metric, synthetic section and cube
    python bench/bench_sections.py real --model RUN --mosaics CSV [--data ../shared/tgs] [--n 300] [--stride 50]

Without --model, `speed` and `sizes` use an untrained model of the default CPU config (weights do not change the
speed). `real` takes the run's held-out tiles (its oof.npz) placed in a salt_mosaic CSV with at least one of their 8
neighbours, and scores each tile predicted alone and predicted inside its 3x3-tile neighbourhood of the mosaic
(sliding windows, stride 50: the windows that touch the tile see the same pixels as in the whole mosaic; a missing
neighbour is the tile mirrored, which is what the reflect padding of a tile alone shows the model).
"""
import argparse, time
import numpy as np, torch
from salt_nb.data import TILE, load_tgs
from salt_nb.runs import get_config, build_model
from salt_nb.metrics import precision_iou
from salt_nb.predict import predict_probs, load_models
from salt_nb.sections import predict_section, predict_cube, section_scores
from salt_nb.inference import resolve_models


def models_of(spec):
    "(models, cfg or None, threshold) of a run/checkpoint, or an untrained default-config model."
    if spec: cks, pp = resolve_models(spec); return cks, None, (pp or {}).get('threshold', 0.5)
    torch.manual_seed(0); cfg = get_config()
    return build_model(cfg).eval(), cfg, 0.5


def speed(a):
    m, cfg, _ = models_of(a.model)
    tiles = np.random.default_rng(0).integers(0, 256, (a.n, TILE, TILE), dtype=np.uint8)
    for backend in ('torch', 'onnx', 'torch', 'onnx'):          # twice each, interleaved: the machine is shared
        t = time.time(); mods, cfgs = load_models(m, cfg, backend=backend); t_load = time.time() - t
        predict_probs(mods, tiles[:64], cfgs, fuse=False, progress=False)   # warm-up
        t = time.time(); predict_probs(mods, tiles, cfgs, bs=a.bs, fuse=False, progress=False); dt = time.time() - t
        print(f"{backend}: {a.n / dt:.1f} tiles/s (flip TTA, bs {a.bs}, {torch.get_num_threads()} threads; load {t_load:.1f}s)", flush=True)


def sizes(a):
    m, cfg, _ = models_of(a.model)
    rng = np.random.default_rng(0)
    sec = rng.integers(0, 256, (1000, 2000), dtype=np.uint8)   # 1000 samples x 2000 traces
    t = time.time(); predict_section(m, sec, cfg, backend=a.backend, progress=False)
    print(f"section 1000x2000 (samples x traces), stride 50, flip TTA, backend {a.backend}: {time.time() - t:.1f}s", flush=True)
    cube = rng.integers(0, 256, (200, 200, 400), dtype=np.uint8)
    t = time.time(); predict_cube(m, cube, cfg, backend=a.backend, progress=False)
    print(f"cube 200x200x400 (il x xl x samples), inlines only, stride 50, flip TTA, backend {a.backend}: {time.time() - t:.1f}s", flush=True)


def synth(a):
    from salt_nb.synth_survey import write_synthetic_survey
    from salt_nb.seismic import read_seismic, fit_amplitudes, to_uint8
    m, _, thr = models_of(a.model)
    f = write_synthetic_survey(a.out, seed=0, k=1000, section_tiles=(20, 10), cube_shape=tuple(a.cube))
    for name in ('section', 'cube'):
        x = read_seismic(f[name]); truth = np.load(f[name + '_salt'])
        fn = predict_section if x.ndim == 2 else predict_cube
        for amap, how in ((fit_amplitudes(x, lo=-128, hi=127), 'fixed range -128..127, the tile intensities'), (fit_amplitudes(x, a.pct), f'{a.pct}% percentile clip')):
            t = time.time(); p = fn(m, x, amap=amap, backend=a.backend, progress=False)
            s = section_scores(p if x.ndim == 2 else p.transpose(0, 2, 1), truth if x.ndim == 2 else truth.transpose(0, 2, 1), thr)
            print(f"synthetic {name} {x.shape} (SEG-Y, {how}): pixel IoU {s['pixel_iou']:.3f}, metric {s['metric']:.3f} over {s['n_tiles']} tiles "
                  f"at threshold {thr}; {time.time() - t:.0f}s", flush=True)
        if x.ndim == 2:                                              # the same section's grid tiles predicted one by one
            from salt_nb.synth import cut_tiles
            from salt_nb.metrics import precision_iou
            tiles, masks, _, _ = cut_tiles(to_uint8(x, fit_amplitudes(x, lo=-128, hi=127)), truth)
            pa = predict_probs(m, tiles, progress=False)[0]
            print(f"synthetic section tiles alone: metric {precision_iou(pa > thr, masks).mean():.3f} over {len(tiles)} tiles", flush=True)


def neighbourhoods(pos, ids_all, images_all, held, min_neighbours: int = 1):
    "For each held-out id with >= `min_neighbours` of its 8 neighbours placed: the 303x303 uint8 neighbourhood (a missing neighbour: the centre tile mirrored), and the count."
    idx = {i: k for k, i in enumerate(ids_all)}
    cell = {(r.mosaic_id, r.x, r.y): r.id for r in pos.itertuples()}
    where = {r.id: (r.mosaic_id, r.x, r.y) for r in pos.itertuples()}
    out_ids, out, counts = [], [], []
    for i in held:
        if i not in where: continue
        g, x, y = where[i]
        centre = images_all[idx[i]]
        rows, n = [], 0
        for dy in (-1, 0, 1):
            row = []
            for dx in (-1, 0, 1):
                nb = cell.get((g, x + dx, y + dy))
                n += int(nb is not None and (dx != 0 or dy != 0))
                flip = [ax for ax, d in ((0, dy), (1, dx)) if d]
                row.append(images_all[idx[nb]] if nb is not None else (np.flip(centre, flip) if flip else centre))
            rows.append(row)
        if n < min_neighbours: continue
        out_ids.append(i); out.append(np.block(rows)); counts.append(n)
    return out_ids, out, np.array(counts)


def real(a):
    import pandas as pd
    from salt_nb.probs import read_oof
    cks, pp = resolve_models(a.model); thr = (pp or {}).get('threshold', 0.5)
    d = load_tgs(a.data, progress=False)
    pos = pd.read_csv(a.mosaics, dtype={'id': str})
    ids_all = np.concatenate([d.train.ids, d.test.ids]); images_all = np.concatenate([d.train.images, d.test.images])
    held = read_oof(a.model)['ids']
    ids, hoods, counts = neighbourhoods(pos, ids_all, images_all, held)
    print(f"{len(held)} held-out tiles, {len(ids)} with at least one of their 8 neighbours placed ({int((counts == 8).sum())} with all 8); "
          f"scoring {min(a.n, len(ids))}", flush=True)
    rng = np.random.default_rng(0); keep = np.sort(rng.permutation(len(ids))[:a.n])
    ids, hoods, counts = [ids[k] for k in keep], [hoods[k] for k in keep], counts[keep]
    mods, cfgs = load_models(cks, backend=a.backend)
    truth = d.train.masks[d.train.index(ids)]
    t = time.time()
    alone = predict_probs(mods, d.train.images[d.train.index(ids)], cfgs, fuse=False, progress=False)[0]
    ins = np.stack([predict_section(mods, h, cfgs, stride=a.stride, progress=False)[TILE:2 * TILE, TILE:2 * TILE] for h in hoods])
    sa, si = precision_iou(alone > thr, truth), precision_iou(ins > thr, truth)
    diff = si - sa
    print(f"threshold {thr}: alone {sa.mean():.4f}, in section {si.mean():.4f}, difference {diff.mean():+.4f} "
          f"(+- {diff.std(ddof=1) / np.sqrt(len(diff)):.4f} s.e.); better in {int((diff > 0).sum())}, worse in {int((diff < 0).sum())}, "
          f"same in {int((diff == 0).sum())} of {len(diff)} tiles; {time.time() - t:.0f}s", flush=True)
    for lo, hi in ((1, 4), (5, 7), (8, 8)):
        k = (counts >= lo) & (counts <= hi)
        if k.any(): print(f"  {lo}-{hi} neighbours placed: {int(k.sum())} tiles, alone {sa[k].mean():.4f}, in section {si[k].mean():.4f}, difference {diff[k].mean():+.4f}", flush=True)
    if a.save: np.savez(a.save, ids=np.array(ids), alone=sa, in_section=si, neighbours=counts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('what', choices=['speed', 'sizes', 'synth', 'real'])
    ap.add_argument('--model'); ap.add_argument('--n', type=int, default=512); ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--backend', default='auto'); ap.add_argument('--out', default='/tmp/synth_survey')
    ap.add_argument('--cube', type=int, nargs=3, default=[48, 202, 303]); ap.add_argument('--pct', type=float, default=1.0)
    ap.add_argument('--data', default='../shared/tgs'); ap.add_argument('--mosaics'); ap.add_argument('--save')
    ap.add_argument('--threads', type=int, default=0); ap.add_argument('--stride', type=int, default=50)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    print(f"{open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}, {torch.get_num_threads()} threads", flush=True)
    dict(speed=speed, sizes=sizes, synth=synth, real=real)[a.what](a)


if __name__ == '__main__':
    main()
