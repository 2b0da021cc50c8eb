"""Peers: salt_nb against the segmentation tools a user would otherwise pick, under the same wall-clock budget, split
and scoring as bench/time_to_score.py, printed side by side.

- `fastai`: fastai's `unet_learner(dls, resnet34, pretrained=False)` (a torchvision ResNet34 U-Net) as its
  documentation sets it up: a `DataBlock` with `MaskBlock(codes)`, tiles resized to 128 (`Resize(128)`),
  `aug_transforms()`, its default batch size (64) and loss (cross-entropy over the two classes), `fit_one_cycle` at its
  default learning rate.
- `smp`: segmentation_models_pytorch's `Unet('resnet34', encoder_weights=None, decoder_attention_type='scse')` on
  1-channel tiles reflect-padded to 128, with the plain loop its examples use: horizontal flips, Adam under a
  one-cycle learning rate (max 1e-3), BCE + Dice, batch 16.
- `salt_nb`: bench/time_to_score.py with the default config for this machine (or `--config`).

The split is fold 0 of `salt_nb.train.make_folds` (5 coverage-stratified folds, seed 42); every peer is scored on
the same held-out tiles at 101x101 with horizontal-flip TTA: the competition metric at threshold 0.5, with the
threshold and minimum area tuned on those tiles (`salt_nb.postprocess.tune_postprocess`), and tuned on one half,
scored on the other (`cv_tuned_score`). Each peer's epochs are sized to the budget from its own measured step time
(a few timed steps on a throw-away copy), so that its one-cycle schedule completes; images/s is training images per
second of training. Needs the dev extras (`pip install -e '.[dev]'`: segmentation-models-pytorch).

    python bench/peers.py --minutes 30 --out runs/peers
"""
from __future__ import annotations
import argparse, copy, json, os, sys, time
from pathlib import Path
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

PEERS = ('salt_nb', 'fastai', 'smp')


def size_epochs(step_s: float, n_train: int, n_valid: int, bs: int, seconds: float) -> int:
    "Epochs that fit in `seconds`: a training step of `bs` tiles takes `step_s`; validation and prediction cost about a third per tile."
    epoch = step_s * (n_train / bs + n_valid / bs / 3)
    return max(1, int((seconds - step_s * n_valid / bs) // epoch))


def time_steps(model: nn.Module, loss_fn, batches, lr: float = 1e-4) -> float:
    "Median seconds of a training step (forward, backward, Adam) over `batches`, on a copy of `model` (the first step not counted)."
    m = copy.deepcopy(model).train()
    opt, ts = torch.optim.Adam(m.parameters(), lr), []
    for xb, yb in batches:
        t = time.perf_counter()
        opt.zero_grad(); loss_fn(m(xb), yb).backward(); opt.step()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts[1:] if len(ts) > 1 else ts))


@torch.no_grad()
def predict_flip(fwd, x: torch.Tensor, bs: int = 32) -> torch.Tensor:
    "Salt probabilities of `fwd` (a batch -> (B, H, W) probabilities) averaged with those of the horizontally flipped batch."
    out = []
    for i in range(0, len(x), bs):
        b = x[i:i + bs]
        out.append(((fwd(b) + fwd(b.flip(-1)).flip(-1)) / 2).float().cpu())
    return torch.cat(out)


def score(probs: np.ndarray, masks: np.ndarray) -> dict:
    "The three scores of time_to_score: threshold 0.5, tuned post-processing, cross-validated tuned."
    from salt_nb.metrics import competition_metric
    from salt_nb.postprocess import tune_postprocess, cv_tuned_score
    pp = tune_postprocess(probs, masks)
    return dict(score_t05=float(competition_metric(probs > 0.5, masks)), score_tuned=pp['score_oof'],
                score_cv_tuned=cv_tuned_score(probs, masks)['score'], postprocess=pp)


def fastai_peer(ts, va: np.ndarray, seconds: float, epochs: int | None, bs: int | None, device) -> dict:
    "fastai's `unet_learner` (ResNet34, no pretrained weights) with its defaults; scores and speed."
    from fastai.vision.all import (DataBlock, ImageBlock, MaskBlock, IndexSplitter, Resize, aug_transforms, unet_learner,
                                   PILImage, PILMask, resnet34)
    t0 = time.time()
    imgs, masks = ts.images, ts.masks
    dblock = DataBlock(blocks=(ImageBlock, MaskBlock(codes=['background', 'salt'])), splitter=IndexSplitter(va),
                       get_x=lambda i: PILImage.create(np.repeat(imgs[i][..., None], 3, -1)), get_y=lambda i: PILMask.create(masks[i].astype(np.uint8)),
                       item_tfms=Resize(128), batch_tfms=aug_transforms())
    # get_x as fastai opens the PNGs: RGB (its default for `PILImage`), 3 equal channels
    dls = dblock.dataloaders(list(range(len(imgs))), bs=bs or 64, device=device, num_workers=0)
    learn = unet_learner(dls, resnet34, pretrained=False)
    if hasattr(learn, 'progress'): learn.remove_cb(learn.progress)             # a benchmark: no progress bars
    if epochs is None:
        it = iter(dls.train)
        step = time_steps(learn.model, learn.loss_func, [next(it) for _ in range(min(3, len(dls.train)))])
        epochs = size_epochs(step, len(dls.train) * dls.train.bs, len(va), dls.train.bs, seconds - (time.time() - t0))
    t1 = time.time()
    learn.fit_one_cycle(epochs)
    train_s = time.time() - t1
    x = F.interpolate(torch.from_numpy(imgs[va]).float()[:, None] / 255, size=(128, 128), mode='bilinear', align_corners=False)
    learn.model.eval()
    fwd = lambda b: torch.softmax(learn.model(b.to(dls.device).repeat(1, 3, 1, 1)), 1)[:, 1]
    p = predict_flip(fwd, x)
    probs = F.interpolate(p[:, None], size=imgs.shape[-2:], mode='bilinear', align_corners=False)[:, 0].numpy()
    return dict(epochs=epochs, train_img_per_s=round(len(dls.train) * dls.train.bs * epochs / train_s, 1),
                minutes=round((time.time() - t0) / 60, 2), **score(probs, masks[va]))


def smp_peer(ts, tr: np.ndarray, va: np.ndarray, seconds: float, epochs: int | None, bs: int | None, device) -> dict:
    "segmentation_models_pytorch's scSE U-Net (ResNet34, no pretrained weights) with a plain Adam one-cycle BCE+Dice loop."
    import segmentation_models_pytorch as smp
    from salt_nb.geometry import Geometry
    t0, bs, g = time.time(), bs or 16, Geometry('pad', 128)
    x = g.forward(torch.from_numpy(ts.images).float()[:, None] / 255 - 0.47) / 0.16
    y = g.forward(torch.from_numpy(ts.masks)[:, None]).float()
    model = smp.Unet('resnet34', encoder_weights=None, decoder_attention_type='scse', in_channels=1, classes=1).to(device)
    dice, bce = smp.losses.DiceLoss('binary'), nn.BCEWithLogitsLoss()
    loss_fn = lambda out, t: bce(out, t) + dice(out, t)
    steps = len(tr) // bs
    if steps < 1: raise ValueError(f"smp peer: {len(tr)} training tiles do not fill one batch of {bs} (--bs)")
    if epochs is None:
        probe = [(x[tr[i * bs:(i + 1) * bs]].to(device), y[tr[i * bs:(i + 1) * bs]].to(device)) for i in range(min(3, steps))]
        epochs = size_epochs(time_steps(model, loss_fn, probe), steps * bs, len(va), bs, seconds - (time.time() - t0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=epochs * steps)
    t1, rng = time.time(), np.random.default_rng(0)
    model.train()
    for _ in range(epochs):
        perm = rng.permutation(tr)
        for i in range(steps):
            idx = perm[i * bs:(i + 1) * bs]
            xb, yb = x[idx].to(device), y[idx].to(device)
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5).to(device)
            xb, yb = torch.where(flip[:, None, None, None], xb.flip(-1), xb), torch.where(flip[:, None, None, None], yb.flip(-1), yb)
            opt.zero_grad(); loss_fn(model(xb), yb).backward(); opt.step(); sched.step()
    train_s = time.time() - t1
    model.eval()
    p = predict_flip(lambda b: torch.sigmoid(model(b.to(device)))[:, 0], x[va])
    probs = g.inverse(p).numpy()
    return dict(epochs=epochs, train_img_per_s=round(steps * bs * epochs / train_s, 1), minutes=round((time.time() - t0) / 60, 2),
                **score(probs, ts.masks[va]))


def salt_nb_peer(data, out: Path, minutes: float, epochs: int | None, config, device) -> dict:
    "salt_nb's default (or `config`) through bench/time_to_score.py: the same split and scores."
    sys.path.insert(0, str(Path(__file__).parent))
    from time_to_score import main as tts
    args = ['--data', str(data), '--out', str(out/'salt_nb')] + (['--epochs', str(epochs)] if epochs else ['--minutes', str(minutes)])
    res = tts(args + (['--config', config] if config else []) + (['--device', device] if device else []))
    return dict(epochs=res['epochs'], train_img_per_s=res['train_img_per_s'], minutes=res['wall_minutes'],
                config=res['config']['name'], **{k: res['final'][k] for k in ('score_t05', 'score_tuned', 'score_cv_tuned')})


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--minutes', type=float, default=30, help='wall-clock budget of each peer (sizes its schedule)')
    p.add_argument('--epochs', type=int, default=None, help='fixed number of epochs for every peer instead of a budget')
    p.add_argument('--data', default=None, help='TGS folder or packed .npz (default: salt_nb.data.find_tgs())')
    p.add_argument('--out', default='runs/peers', help="folder for salt_nb's run and peers.json")
    p.add_argument('--peers', default=','.join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
    p.add_argument('--config', default=None, help="salt_nb's config (default: salt_train's for this machine)")
    p.add_argument('--bs', type=int, default=None, help="batch size of the fastai and smp peers (default: theirs, 64 and 16)")
    p.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    a = p.parse_args(argv)
    from salt_nb.data import load_tgs, find_tgs
    from salt_nb.runs import default_device
    from salt_nb.train import make_folds
    peers = [s.strip() for s in a.peers.split(',') if s.strip()]
    if bad := [s for s in peers if s not in PEERS]: sys.exit(f"peers: --peers: unknown {bad}; choose from {PEERS}")
    data = a.data or find_tgs()
    if data is None: sys.exit('peers: no TGS data found (set $SALT_NB_TGS or pass --data)')
    ts = load_tgs(data, progress=False).train
    folds = make_folds(ts, 5, 42)
    tr, va = np.flatnonzero(folds != 0), np.flatnonzero(folds == 0)
    out, dev = Path(a.out), default_device(a.device)
    out.mkdir(parents=True, exist_ok=True)
    res = {}
    for name in peers:
        torch.manual_seed(0)
        print(f"peers: {name} ({a.epochs} epochs)" if a.epochs else f"peers: {name} ({a.minutes} min)", flush=True)
        if name == 'salt_nb': res[name] = salt_nb_peer(data, out, a.minutes, a.epochs, a.config, a.device)
        elif name == 'fastai': res[name] = fastai_peer(ts, va, a.minutes * 60, a.epochs, a.bs, dev)
        else: res[name] = smp_peer(ts, tr, va, a.minutes * 60, a.epochs, a.bs, dev)
    info = dict(budget_minutes=None if a.epochs else a.minutes, epochs=a.epochs, n_train=len(tr), n_valid=len(va), device=str(dev),
                threads=torch.get_num_threads(), date=time.strftime('%Y-%m-%d %H:%M'), peers=res)
    (out/'peers.json').write_text(json.dumps(info, indent=1, default=str))
    print(f"\n{'peer':8s} {'score(t=0.5)':>12} {'score(tuned)':>12} {'cv tuned':>9} {'epochs':>6} {'train img/s':>11} {'minutes':>7}")
    for n, r in res.items():
        print(f"{n:8s} {r['score_t05']:12.4f} {r['score_tuned']:12.4f} {r['score_cv_tuned']:9.4f} {r['epochs']:6d} "
              f"{r['train_img_per_s']:11.1f} {r['minutes']:7.2f}")
    print(f"split: fold 0 of 5 (seed 42), {len(tr)} training / {len(va)} held-out tiles; {dev}, {torch.get_num_threads()} threads")
    return info


if __name__ == '__main__': main()
