"""Time the vectorised competition metric against a per-image loop on 1000 masks of 101x101.

    python bench/bench_metrics.py [N]

Uses real train masks (shifted by a few pixels as predictions) when `find_tgs()` finds the data, else random blobs.
"""
import sys, time, platform
import numpy as np, pandas as pd, torch
from salt_nb.data import TILE, find_tgs, rle_decode
from salt_nb.metrics import precision_iou, precision_iou_torch, THRESHOLDS_PCT


def loop_precision_iou(preds, truths):
    "The per-image loop most kernels use (with exact integer thresholds, so results agree)."
    out = []
    for p, t in zip(preds, truths):
        if not t.any(): out.append(float(not p.any())); continue
        inter, union = int((p & t).sum()), int((p | t).sum())
        out.append(float(np.mean([inter * 100 > k * union for k in THRESHOLDS_PCT])))
    return np.array(out)


def masks(n):
    "n true masks and predictions (real masks shifted by up to 3 px, or random blobs)."
    rng = np.random.default_rng(0)
    tgs = find_tgs()
    if tgs is not None:
        df = pd.read_csv(tgs/'train.csv', keep_default_na=False)
        t = np.stack([rle_decode(r) for r in df.rle_mask[:n]])
        src = 'real train masks'
    else:
        t = np.stack([np.hypot(*np.mgrid[:TILE, :TILE] - rng.integers(0, TILE, (2, 1, 1))) < rng.integers(0, 60) for _ in range(n)])
        src = 'synthetic discs'
    p = np.roll(t, tuple(rng.integers(-3, 4, 2)), axis=(1, 2))
    return p, t, src


def best_ms(f, *args, reps=7):
    "Median of `reps` timings of f(*args), in ms."
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(*args); ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1000


if __name__ == '__main__':
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    p, t, src = masks(n)
    assert np.array_equal(precision_iou(p, t), loop_precision_iou(p, t))
    pt, tt = torch.from_numpy(p), torch.from_numpy(t)
    vec, tor, loop = best_ms(precision_iou, p, t), best_ms(precision_iou_torch, pt, tt), best_ms(loop_precision_iou, p, t, reps=3)
    tor_native = best_ms(precision_iou_torch, pt, tt, False, reps=3)
    print(f'{n} masks {TILE}x{TILE} ({src}), {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}')
    print(f'precision_iou (numpy, vectorised): {vec:8.2f} ms')
    print(f'precision_iou_torch (CPU, numpy):  {tor:8.2f} ms')
    print(f'precision_iou_torch (CPU, torch):  {tor_native:8.2f} ms   (via_numpy=False: the code a GPU runs)')
    print(f'per-image Python loop:             {loop:8.2f} ms')
    print(f'speed-up numpy vs loop: {loop / vec:.1f}x')
