"""Time the batched per-image Lovasz hinge against the per-image loop (Berman et al.'s lovasz_hinge, per_image=True).

    python bench/bench_lovasz.py [BATCH] [SIZE]      # default: 64 128, on the CPU, forward + backward
"""
import sys, time
import numpy as np, torch, torch.nn.functional as F
from salt_nb.losses import lovasz_hinge


def lovasz_grad(gt_sorted):
    "Berman et al.'s gradient of the Lovasz extension w.r.t. sorted errors."
    p = len(gt_sorted)
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.float().cumsum(0)
    union = gts + (1 - gt_sorted).float().cumsum(0)
    jaccard = 1. - intersection / union
    if p > 1: jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]
    return jaccard


def lovasz_hinge_loop(logits, labels):
    "Berman et al.'s per-image Lovasz hinge: a Python loop over the images."
    losses = []
    for log, lab in zip(logits, labels):
        log, lab = log.reshape(-1), lab.reshape(-1).float()
        errors = 1. - log * (2. * lab - 1.)
        errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
        losses.append(torch.dot(F.relu(errors_sorted), lovasz_grad(lab[perm])))
    return sum(losses) / len(losses)


def time_ms(fs, x, t, reps=7):
    "Median forward+backward time in ms of each loss in `fs`, timed alternately so that load changes hit all alike."
    ts = [[] for _ in fs]
    for r in range(reps + 1):
        for f, tl in zip(fs, ts):
            xx = x.clone().requires_grad_()
            t0 = time.perf_counter(); f(xx, t).backward()
            if r: tl.append(time.perf_counter() - t0)  # first round is warm-up
    return [float(np.median(tl)) * 1000 for tl in ts]


if __name__ == '__main__':
    bs = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    sz = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    torch.manual_seed(0)
    x = torch.randn(bs, 1, sz, sz)
    t = (F.avg_pool2d(torch.rand(bs, 1, sz, sz), 15, 1, 7) > .5).float(); t[::4] = 0  # blobs, a quarter empty
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    la, lb = lovasz_hinge(a, t), lovasz_hinge_loop(b, t)
    la.backward(); lb.backward()
    assert abs(la.item() - lb.item()) < 1e-5 and torch.allclose(a.grad, b.grad, atol=1e-6)
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        batched, loop = time_ms([lovasz_hinge, lovasz_hinge_loop], x, t)
        print(f'Lovasz hinge, batch {bs} x 1 x {sz} x {sz}, CPU float32, forward+backward, torch threads {threads}')
        print(f'  batched (torch.sort dim=1): {batched:8.1f} ms')
        print(f'  per-image loop (Berman):    {loop:8.1f} ms')
        print(f'  speed-up: {loop / batched:.2f}x')
