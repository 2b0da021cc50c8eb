"""CPU speed of salt_nb.models: forward ms/batch (eval, no grad) and training images/s (forward+backward+SGD step).

usage: python bench/bench_models.py [--models ref tiny small resnet34 ...] [--bs 32] [--size 128] [--threads 2] [--reps 3]

Measurements are interleaved across models (rep 1 of every model, then rep 2, ...) and the best of `--reps` is
reported, so a busy shared machine hurts all models alike. `cpu s/img` is process CPU time per training image
(both threads), a load-robust cost measure. `ref` is a reference-like plain U-Net (widths 16-128 at full
resolution, 2 convs per level, scSE decoder) to compare against. Names with `@cl` use channels_last, names with
`@bf16` train under CPU bf16 autocast (`torch.autocast('cpu', torch.bfloat16)`, weights stay float32), names with
`@compile` train through `torch.compile(model)` (inductor; forward columns stay eager; compile time printed).
"""
import argparse, datetime, platform, time, os
import torch, torch.nn as nn, torch.nn.functional as F
from salt_nb.models import get_model, param_counts, ConvBnRelu, SCSE, fuse_bn


class RefUNet(nn.Module):
    "Reference-like plain U-Net: widths 16-128, full-resolution first level, scSE in the decoder."
    def __init__(self, w=(16, 32, 64, 128)):
        super().__init__()
        self.enc, ci = nn.ModuleList(), 1
        for c in w: self.enc.append(nn.Sequential(ConvBnRelu(ci, c), ConvBnRelu(c, c))); ci = c
        self.center = ConvBnRelu(w[-1], w[-1])
        self.dec, ci = nn.ModuleList(), w[-1]
        for c in reversed(w): self.dec.append(nn.Sequential(ConvBnRelu(ci + c, c), ConvBnRelu(c, c), SCSE(c))); ci = c
        self.head = nn.Conv2d(w[0], 1, 1)
    def forward(self, x):
        skips = []
        for e in self.enc: x = e(x); skips.append(x); x = F.max_pool2d(x, 2)
        x = self.center(x)
        for d, s in zip(self.dec, reversed(skips)):
            x = d(torch.cat([F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False), s], 1))
        return self.head(x)


VARIANTS = {
    'ref': lambda: RefUNet(),
    'small_block': lambda: get_model('small', final='block'),
    'small_v0': lambda: get_model('small', widths=(32, 64, 128, 256), dec_ch=(128, 64, 32)),
    'small_2conv': lambda: get_model('small', n_convs=2, reduce=False),
    'small_noscse': lambda: get_model('small', scse=False),
}

def macs(m, size=128):
    "Forward multiply-accumulates (convs and linears) and BN/ReLU output elements per image, in millions."
    tot = dict(mac=0, act=0)
    def hook(mod, i, o):
        if isinstance(mod, nn.Conv2d): tot['mac'] += o.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.ConvTranspose2d): tot['mac'] += i[0].numel() * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear): tot['mac'] += o.numel() * mod.in_features
        elif isinstance(mod, (nn.BatchNorm2d, nn.ReLU)): tot['act'] += o.numel()
    hs = [q.register_forward_hook(hook) for q in m.modules()]
    with torch.no_grad(): m.eval()(torch.randn(1, 1, size, size))
    for h in hs: h.remove()
    return tot['mac'] / 1e6, tot['act'] / 1e6

def build(name):
    base = name.split('@')[0]
    m = VARIANTS[base]() if base in VARIANTS else get_model(base)
    return m

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--models', nargs='+', default=['ref', 'tiny', 'small', 'small_wide', 'small@cl'])
    ap.add_argument('--bs', type=int, default=32); ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--no-train', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    x = torch.randn(a.bs, 1, a.size, a.size); y = (torch.rand(a.bs, 1, a.size, a.size) > 0.5).float()
    models, res = {}, {}
    for n in a.models:
        m = build(n); cl = '@cl' in n
        if cl: m = m.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
        xi = x.contiguous(memory_format=torch.channels_last) if cl else x
        models[n] = (m, opt, xi, '@bf16' in n, torch.compile(m) if '@compile' in n else m)
        res[n] = dict(params=param_counts(m)['total'], fwd=[], fused=[], train=[], cpu=[], cost=macs(m, a.size))

    def step(f, opt, xi, bf16=False):
        with torch.autocast('cpu', torch.bfloat16, enabled=bf16):
            out = f(xi); out = out[0] if isinstance(out, tuple) else out
            loss = F.binary_cross_entropy_with_logits(out.float(), y)
        opt.zero_grad(); loss.backward(); opt.step()

    for n, (m, opt, xi, bf, f) in models.items():      # warm-up (oneDNN primitive creation, compilation)
        with torch.no_grad(): m.eval()(xi)
        if not a.no_train:
            t = time.perf_counter(); m.train(); step(f, opt, xi, bf)
            if f is not m: print(f"{n}: first (compiled) training step {time.perf_counter() - t:.0f} s", flush=True)
    for r in range(a.reps):
        for n, (m, opt, xi, bf, f) in models.items():
            m.eval()
            with torch.no_grad():
                t = time.perf_counter(); m(xi); res[n]['fwd'].append(time.perf_counter() - t)
                fm = fuse_bn(m); fm(xi)
                t = time.perf_counter(); fm(xi); res[n]['fused'].append(time.perf_counter() - t)
            if a.no_train: continue
            m.train()
            t, c = time.perf_counter(), time.process_time(); step(f, opt, xi, bf)
            res[n]['train'].append(time.perf_counter() - t); res[n]['cpu'].append(time.process_time() - c)
        print(f"rep {r + 1}/{a.reps} done, load {os.getloadavg()[0]:.1f}", flush=True)

    ref = res.get('ref')
    print(f"\n{datetime.date.today()}  {platform.processor() or platform.machine()}  torch {torch.__version__}  "
          f"threads={a.threads} batch={a.bs} size={a.size} reps={a.reps} (best of reps)  load {os.getloadavg()[0]:.1f}\n")
    print("| model | params | MMAC/img | BN/ReLU Melem/img | fwd ms/batch | fwd ms/batch (BN fused) | train img/s | cpu s/img (train) | train speed vs ref |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, d in res.items():
        tr = f"{a.bs / min(d['train']):.1f}" if d['train'] else '-'
        cpu = f"{min(d['cpu']) / a.bs:.4f}" if d['cpu'] else '-'
        rel = f"{min(ref['train']) / min(d['train']):.2f}x" if ref and d['train'] and ref['train'] else '-'
        print(f"| {n} | {d['params'] / 1e6:.2f}M | {d['cost'][0]:.0f} | {d['cost'][1]:.2f} | {1000 * min(d['fwd']):.0f} | {1000 * min(d['fused']):.0f} | {tr} | {cpu} | {rel} |")

if __name__ == '__main__': main()
