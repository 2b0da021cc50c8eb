"""The issue's CPU reference, re-run on the project's held-out split: a plain-PyTorch U-Net training loop.

The training issue quotes a reference measured with a plain PyTorch script (not project code): a U-Net with widths
16-128 and an scSE decoder, reflect-padded 101 -> 128, AdamW with a one-cycle schedule, BCE+Dice then Lovasz, flip
TTA; about 74 img/s on the 2 cores, 0.796 on 1000 held-out tiles after a complete 20-minute schedule. Its split is
unknown, so its scores cannot be compared with ours directly. This script trains that recipe on fold 0 of
`salt_nb.train.make_folds(5, seed 42)` (2400 / 600 tiles, the split of `bench/time_to_score.py`), with its own loop,
model and optimiser; only the data loading, the two loss formulas and the scoring come from salt_nb.

    python bench/reference_unet.py --minutes 20 --out runs/ref20

The schedule is sized once from a measured step time (never cut mid-way); the held-out score (flip TTA, threshold
0.5 and tuned) is printed at every quarter of the schedule and at the end.
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).parent))
from bench_models import RefUNet


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--minutes', type=float, default=20, help='wall-clock budget of the whole schedule')
    p.add_argument('--epochs', type=int, default=None, help='fixed number of epochs instead of a budget')
    p.add_argument('--bs', type=int, default=32); p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--bce-frac', type=float, default=0.4, help='share of the epochs trained with BCE+Dice before Lovasz')
    p.add_argument('--data', default=None); p.add_argument('--out', default=None, help='folder for result.json')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--precision', default='auto', choices=['auto', 'bf16', 'fp32'],
                   help='bf16 autocast: auto = where the CPU has native bf16 (emulated bf16 is 8-9x slower than float32)')
    a = p.parse_args(argv)
    from salt_nb.data import load_tgs, find_tgs
    from salt_nb.losses import lovasz_hinge, bce_dice_loss as bce_dice
    from salt_nb.metrics import competition_metric
    from salt_nb.inference import tune_postprocess
    from salt_nb.train import make_folds
    from salt_nb.runs import use_bf16
    bf16 = use_bf16(a.precision, 'cpu')
    data = a.data or find_tgs()
    if data is None: sys.exit('reference_unet: no TGS data found (set $SALT_NB_TGS or pass --data)')
    ts = load_tgs(data, progress=False).train
    folds = make_folds(ts, 5, 42)
    tr, va = np.flatnonzero(folds != 0), np.flatnonzero(folds == 0)
    pad = lambda x: F.pad(x, (13, 14, 13, 14), mode='reflect')
    X = torch.from_numpy(ts.images.astype(np.float32) / 255.)[:, None]
    X = pad((X - 0.47) / 0.16)
    Y = F.pad(torch.from_numpy(ts.masks.astype(np.float32))[:, None], (13, 14, 13, 14))
    torch.manual_seed(a.seed)
    model = RefUNet().to(memory_format=torch.channels_last)
    n_par = sum(q.numel() for q in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr)

    def step(idx, loss_fn):
        x, y = X[idx], Y[idx]
        flip = torch.rand(len(idx)) < 0.5
        x, y = torch.where(flip[:, None, None, None], x.flip(-1), x), torch.where(flip[:, None, None, None], y.flip(-1), y)
        with torch.autocast('cpu', torch.bfloat16, enabled=bf16):
            out = model(x.contiguous(memory_format=torch.channels_last))
        loss = loss_fn(out.float(), y)
        opt.zero_grad(); loss.backward(); opt.step()
        return loss.item()

    def evaluate():
        model.eval(); probs = []
        with torch.no_grad(), torch.autocast('cpu', torch.bfloat16, enabled=bf16):
            for i in range(0, len(va), 128):
                x = X[va[i:i + 128]].contiguous(memory_format=torch.channels_last)
                lo = (model(x).float() + model(x.flip(-1)).float().flip(-1)) / 2
                probs.append(torch.sigmoid(lo)[:, 0, 13:114, 13:114].numpy())
        model.train()
        probs = np.concatenate(probs); truth = ts.masks[va]
        return float(competition_metric(probs > 0.5, truth)), tune_postprocess(probs, truth)['score_oof']

    t0 = time.time()
    n_batches = len(tr) // a.bs
    if not n_batches: sys.exit(f'reference_unet: {len(tr)} training tiles make no batch of {a.bs}: lower --bs')
    if a.epochs: epochs = a.epochs
    else:                                       # size the schedule: median of 8 timed steps after 3 warm-up steps
        ts_ = []
        for i in range(11):
            t = time.perf_counter(); step(tr[i * a.bs:(i + 1) * a.bs], bce_dice); ts_.append(time.perf_counter() - t)
        per_epoch = np.median(ts_[3:]) * n_batches + 0.003 * len(va)
        epochs = max(1, int((a.minutes * 60 * 0.97 - (time.time() - t0)) // per_epoch))
        torch.manual_seed(a.seed); model = RefUNet().to(memory_format=torch.channels_last)   # a fresh start after the probe
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr)
        print(f"measured {a.bs / np.median(ts_[3:]):.0f} img/s -> {epochs} epochs", flush=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=epochs * n_batches)
    n_bce = round(epochs * a.bce_frac)
    quarters = {max(1, round(epochs * q / 4)) for q in (1, 2, 3, 4)}
    print(f"reference U-Net ({n_par / 1e6:.2f}M params), pad128, {'bf16' if bf16 else 'float32'}, bs {a.bs}, AdamW one-cycle lr {a.lr}: {n_bce} epochs "
          f"BCE+Dice then {epochs - n_bce} Lovasz on {len(tr)} tiles; held out {len(va)}", flush=True)
    curve, t_train, g = [], 0., torch.Generator().manual_seed(a.seed)
    for e in range(epochs):
        te = time.time()
        perm = tr[torch.randperm(len(tr), generator=g).numpy()]
        loss_fn = bce_dice if e < n_bce else lovasz_hinge
        losses = []
        for b in range(n_batches):
            losses.append(step(perm[b * a.bs:(b + 1) * a.bs], loss_fn)); sched.step()
        t_train += time.time() - te
        line = f"epoch {e + 1}/{epochs} loss {np.mean(losses):.4f} {time.time() - te:.0f}s"
        if e + 1 in quarters:
            s05, st = evaluate()
            curve.append(dict(epoch=e + 1, train_minutes=round(t_train / 60, 2), score_t05=s05, score_tuned=st))
            line += f"  held-out {s05:.4f} (t=0.5) {st:.4f} (tuned) after {t_train / 60:.1f} min of training"
        print(line, flush=True)
    res = dict(params=n_par, epochs=epochs, bs=a.bs, lr=a.lr, bf16=bf16, n_train=len(tr), n_valid=len(va), curve=curve,
               train_img_per_s=round(len(tr) // a.bs * a.bs * epochs / t_train, 1), wall_minutes=round((time.time() - t0) / 60, 2),
               threads=torch.get_num_threads(), date=time.strftime('%Y-%m-%d %H:%M'))
    if a.out: Path(a.out).mkdir(parents=True, exist_ok=True); (Path(a.out)/'result.json').write_text(json.dumps(res, indent=1))
    print(json.dumps(res))
    return res


if __name__ == '__main__': main()
