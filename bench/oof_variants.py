"""Cheap variants of a finished run's predictions, scored on its out-of-fold tiles: mask clean-ups and shifted pads.

    python bench/oof_variants.py RUN_DIR [RUN_DIR ...] [--offsets] [--data ../shared/tgs]

RUN_DIR holds `oof.npz` and `postprocess.json` (a `time_to_score.py` or `salt_train` run). For each run it prints
the mean per-image score of its masks as submitted (its tuned threshold and minimum area), and of the same masks
with holes filled, with the largest connected component only, and with components under 50 pixels dropped (the
largest kept). With `--offsets` it also predicts each fold's held-out tiles again with its final checkpoint, the
tile placed at every offset of a 3x3 grid inside its `pad` geometry (reflect padding, flip TTA at each offset), and
prints the t=0.5 score of each offset alone and averaged with the default (centred) one, then of all nine averaged.
"""
import argparse, numpy as np, torch, torch.nn.functional as F
import scipy.ndimage as ndi
from salt_nb.data import load_tgs, find_tgs
from salt_nb.analysis import load_oof
from salt_nb.inference import load_postprocess, apply_postprocess, as_float, cv_tuned_score
from salt_nb.metrics import precision_iou
from salt_nb.models import fuse_bn, add_depth_channels
from salt_nb.runs import load_checkpoint, prepare_input, keep_freed_memory
from salt_nb.train import final_checkpoint


def components(m: np.ndarray, min_px: int = 0, largest: bool = False) -> np.ndarray:
    "Masks (N,H,W) keeping, per tile, its largest 4-connected component and (unless `largest`) those of `min_px` or more."
    out = m.copy()
    for k, x in enumerate(m):
        lab, n = ndi.label(x)
        if n < 2: continue
        sizes = ndi.sum(x, lab, range(1, n + 1))
        keep = np.zeros(n + 1, bool)
        keep[1:] = False if largest else sizes >= min_px
        keep[1 + np.argmax(sizes)] = True
        out[k] = keep[lab]
    return out


def cleanups(masks: np.ndarray) -> dict:
    "The mask clean-up variants, by name."
    return {'as submitted': masks, 'holes filled': np.stack([ndi.binary_fill_holes(x) for x in masks]),
            'largest component': components(masks, largest=True), 'under 50 px dropped': components(masks, 50)}


def predict_at(model, images: np.ndarray, cfg, offset: tuple, bs: int = 64) -> np.ndarray:
    "Flip-TTA probabilities (N,101,101) with each tile at `offset` (top, left) inside the config's pad size."
    if cfg.geom.kind != 'pad': raise ValueError(f"--offsets needs a 'pad' geometry, not {cfg.geometry!r}")
    tot, (t, l) = cfg.geom.size - cfg.geom.tile, offset
    plain, out = cfg.replace(geometry=f'pad{cfg.geom.tile}'), []
    with torch.inference_mode():
        for s in range(0, len(images), bs):
            x = prepare_input(images[s:s + bs], plain, channels=False)      # normalised, not padded
            views = []
            for flip in (False, True):
                v = F.pad(x.flip(-1) if flip else x, (l, tot - l, t, tot - t), mode='reflect')
                if cfg.depth_channels: v = add_depth_channels(v)              # as prepare_input: after the padding
                p = torch.sigmoid(model(v).float())[:, 0, t:t + cfg.geom.tile, l:l + cfg.geom.tile]
                views.append(p.flip(-1) if flip else p)
            out.append(((views[0] + views[1]) / 2).numpy())
    return np.concatenate(out)


def offset_table(run, oof, images, truths):
    "Re-predict each fold's held-out tiles at the 9 offsets; print their scores (t=0.5)."
    if oof['folds'] is None: raise SystemExit(f"{run}: oof.npz has no folds, so no checkpoint to re-predict with")
    probs, d = {}, None
    for fold in np.unique(oof['folds']):
        sel = oof['folds'] == fold
        model, cfg = load_checkpoint(final_checkpoint(run, int(fold)))[:2]
        model, tot = fuse_bn(model).eval(), cfg.geom.size - cfg.geom.tile
        d = (tot // 2, tot // 2)
        for off in [d] + [(a, b) for a in (0, tot // 2, tot) for b in (0, tot // 2, tot) if (a, b) != d]:
            probs.setdefault(off, np.zeros(truths.shape, np.float32))[sel] = predict_at(model, images[sel], cfg, off)
    score = lambda p: precision_iou(p > 0.5, truths).mean()
    print(f"  default offset {d}: {score(probs[d]):.4f} (saved OOF within {np.abs(probs[d] - as_float(oof['probs'])).max():.1e})")
    for off, p in probs.items():
        if off != d: print(f"  offset {off}: alone {score(p):.4f}, averaged with the default {score((p + probs[d]) / 2):.4f}")
    allp = np.mean(list(probs.values()), 0)
    print(f"  all 9 averaged: {score(allp):.4f} (CV tuned {cv_tuned_score(allp, truths)['score']:.4f})")


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('runs', nargs='+', help='run folders (oof.npz, postprocess.json, checkpoints/)')
    p.add_argument('--data', default=None, help='TGS folder or packed .npz (default: salt_nb.data.find_tgs())')
    p.add_argument('--offsets', action='store_true', help='also re-predict the held-out tiles at 9 pad offsets')
    a = p.parse_args()
    keep_freed_memory()
    train = load_tgs(a.data or find_tgs(), progress=False).train
    for run in a.runs:
        try: oof = load_oof(run, train)
        except (FileNotFoundError, ValueError) as e: raise SystemExit(f"oof_variants: {e}") from None
        tiles = oof['tiles']; truths = tiles.masks.astype(bool)
        masks = apply_postprocess(as_float(oof['probs']), load_postprocess(run)).astype(bool)
        print(f"{run} ({len(tiles)} tiles): " + ', '.join(f"{k} {precision_iou(m, truths).mean():.4f}" for k, m in cleanups(masks).items()))
        if a.offsets: offset_table(run, oof, tiles.images, truths)


if __name__ == '__main__': main()
