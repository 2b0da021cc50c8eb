"""What tuning the post-processing earns on tiles it did not see, with and without the margin of `tune_postprocess`.

    python bench/tuning_margin.py RUN_DIR [RUN_DIR ...] [--data ../shared/tgs] [--repeats 10]

For each run folder (its `oof.npz`), against the default post-processing (threshold 0.5, no minimum area, no gating)
on all its out-of-fold tiles, it prints the cross-validated tuned score (`cv_tuned_score`: tuned on one half of the
tiles, scored on the other, both ways, `--repeats` times) with the default margin (a tuned cell must beat the default
by more than `MIN_GAIN / sqrt(tiles)`) and without one (`min_gain=0`, the rule before session 22), and the parameters
`tune_postprocess` picks on all the tiles under each rule. The last line averages the gains over the runs.
"""
import argparse, numpy as np
from salt_nb.data import load_tgs, find_tgs
from salt_nb.analysis import load_oof
from salt_nb.inference import as_float, apply_postprocess, cv_tuned_score, tune_postprocess, MIN_GAIN
from salt_nb.metrics import precision_iou


def margin_row(probs, truths, cls=None, repeats: int = 10) -> dict:
    "Default score, CV tuned scores and tuned parameters with the default margin and without one."
    default = float(precision_iou(apply_postprocess(probs, dict(threshold=0.5, min_area=0)), truths).mean())
    row = dict(n=len(truths), default=default)
    for name, g in (('margin', None), ('no_margin', 0.0)):
        row[name] = cv_tuned_score(probs, truths, cls, n_repeats=repeats, min_gain=g)['score']
        pp = tune_postprocess(probs, truths, cls, min_gain=g)
        row[name + '_params'] = (pp['threshold'], pp['min_area'], pp['cls_threshold'])
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('runs', nargs='+', help='run folders holding oof.npz')
    p.add_argument('--data', default=None, help='TGS folder or packed .npz (default: salt_nb.data.find_tgs())')
    p.add_argument('--repeats', type=int, default=10, help='halvings of the tiles for the cross-validated scores')
    a = p.parse_args()
    train = load_tgs(a.data or find_tgs(), progress=False).train
    print(f"MIN_GAIN {MIN_GAIN}: a tuned cell must beat the default by more than {MIN_GAIN} / sqrt(tiles)")
    gains = []
    for run in a.runs:
        try: oof = load_oof(run, train)
        except (FileNotFoundError, ValueError) as e: raise SystemExit(f"tuning_margin: {e}") from None
        r = margin_row(as_float(oof['probs']), oof['tiles'].masks.astype(bool), oof['cls_probs'], a.repeats)
        gains.append((r['margin'] - r['default'], r['no_margin'] - r['default']))
        print(f"{run} ({r['n']} tiles): default {r['default']:.4f}; CV tuned with the margin {r['margin']:.4f} "
              f"({gains[-1][0]:+.4f}), without {r['no_margin']:.4f} ({gains[-1][1]:+.4f}); "
              f"picked on all tiles {r['margin_params']} with, {r['no_margin_params']} without")
    g = np.mean(gains, 0)
    print(f"mean over {len(gains)} run(s): with the margin {g[0]:+.4f}, without {g[1]:+.4f} (CV tuned minus default)")


if __name__ == '__main__': main()
