"""Speed of `salt_nb.predict.predict_probs` (flip TTA on by default) on this machine.

    python bench/bench_predict.py [--model small] [--kwargs JSON] [--geometry pad128] [--n 512] [--bs 64] [--no-tta] [--full]
                                  [--device cpu|cuda] [--threads N]
                                  [--precision auto|bf16|fp32] [--no-fuse]

Times an untrained model built from a RunConfig (weights do not change the speed) on random uint8 tiles, after
one warm-up batch, and extrapolates to 19000 tiles (the Kaggle test set has 18000); `--full` times all 19000.
Prints the machine (CPU, cores, torch threads, load average: the machine may be shared) with the numbers.
"""
import argparse, json, os, platform, time
import numpy as np, torch
from salt_nb.runs import RunConfig, build_model, use_bf16, keep_freed_memory, default_device
from salt_nb.predict import predict_probs

N_TEST = 19000


def cpu_name() -> str:
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or 'unknown CPU'


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='small'); ap.add_argument('--kwargs', default='{}', help='model_kwargs as JSON'); ap.add_argument('--geometry', default='pad128')
    ap.add_argument('--n', type=int, default=512); ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--no-tta', dest='tta', action='store_false'); ap.add_argument('--full', action='store_true')
    ap.add_argument('--device', default=None); ap.add_argument('--no-fuse', dest='fuse', action='store_false', help='do not fold BatchNorm into convs');
    ap.add_argument('--precision', default='auto', help='auto (bf16 on GPU / CPUs with native bf16), bf16, fp32'); ap.add_argument('--threads', type=int, default=0)
    ap.add_argument('--default-malloc', dest='keep', action='store_false', help="glibc's malloc defaults (salt_predict keeps freed memory)")
    a = ap.parse_args()
    if a.keep: keep_freed_memory()
    if a.threads: torch.set_num_threads(a.threads)
    cfg = RunConfig(model=a.model, model_kwargs=json.loads(a.kwargs), geometry=a.geometry)
    torch.manual_seed(0)
    if ':' in a.model: model = build_model(cfg)
    else:
        from salt_nb.models import get_model
        model = get_model(a.model, in_ch=cfg.in_channels, **cfg.model_kwargs)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    device = str(default_device(a.device))
    n = N_TEST if a.full else a.n
    imgs = np.random.default_rng(0).integers(0, 256, (n, 101, 101), dtype=np.uint8)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} threads {torch.get_num_threads()}, "
          f"device {device}" + (f" ({torch.cuda.get_device_name()})" if device == 'cuda' else '')
          + f", load average before {os.getloadavg()[0]:.1f}")
    print(f"model {a.model!r} ({n_params / 1e6:.2f}M parameters), geometry {a.geometry}, tta {a.tta}, bs {a.bs}, "
          f"precision {a.precision} (bf16: {use_bf16(a.precision, torch.device(device))}), fuse_bn {a.fuse}")
    predict_probs(model, imgs[:a.bs], cfg, tta=a.tta, bs=a.bs, device=device, progress=False, precision=a.precision, fuse=a.fuse)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    probs, _ = predict_probs(model, imgs, cfg, tta=a.tta, bs=a.bs, device=device, progress=False, precision=a.precision, fuse=a.fuse)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert probs.shape == (n, 101, 101)
    rate = n / dt
    print(f"{n} tiles in {dt:.1f}s: {rate:.1f} tiles/s ({rate * (2 if a.tta else 1):.1f} forward passes/s); "
          f"{N_TEST} tiles: {'measured' if a.full else 'extrapolated'} {N_TEST / rate / 60:.1f} min; "
          f"load average after {os.getloadavg()[0]:.1f}")
    # On a shared machine wall time overstates the cost: the process CPU time divided by the threads torch uses
    # estimates the wall time on an otherwise idle machine.
    idle = cpu / torch.get_num_threads()
    print(f"process CPU time {cpu:.1f}s over {torch.get_num_threads()} threads: idle-machine estimate {n / idle:.1f} tiles/s, "
          f"{N_TEST} tiles in {N_TEST / (n / idle) / 60:.1f} min")


if __name__ == '__main__':
    main()
