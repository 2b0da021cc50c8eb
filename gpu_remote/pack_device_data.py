"""Pack the TGS data for a remote GPU machine: one compressed `.npz` with every labeled tile and the first N test tiles.

    python gpu_remote/pack_device_data.py .cache/tgs_device.npz [--data ../shared/tgs] [--test 2000] [--max-mb 52]

The file is meant to travel with the working tree to a machine without network access (see gpu_remote/README.md),
where `gpu_remote/device_call.sh` reads it. Compressed, the 3000 labeled tiles take about 24 MB (the seismic images
hardly compress, the masks do) and each test tile about 7.7 KB. The default, 2000 test tiles, makes a 39 MB file,
and the compressed uint8 probabilities that `device_call.sh` returns for them stay under 16 MB even for a barely
trained model. The packed test tiles are the file's sample submission. Write it to a git-ignored path (`.cache/` is)
so that it is not also copied as part of the working tree.
"""
import argparse, subprocess, sys
from pathlib import Path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('out', help='the .npz to write (under .cache/, which git ignores)')
    p.add_argument('--data', default=None, help='TGS folder (default: salt_nb.data.find_tgs())')
    p.add_argument('--test', type=int, default=2000, help='how many test tiles to include (the first N of test/images)')
    p.add_argument('--max-mb', type=float, default=52, help='fail if the file is larger (MB)')
    a = p.parse_args(argv)
    from salt_nb.data import load_tgs, find_tgs, save_packed
    from salt_nb.files import check_out_file
    if Path(a.out).suffix != '.npz': sys.exit(f'pack_device_data: {a.out} must end in .npz')
    try: out = check_out_file(a.out, flag='out')
    except ValueError as e: sys.exit(f'pack_device_data: {e}')
    data = a.data or find_tgs()
    if data is None: sys.exit('pack_device_data: no TGS data found (set $SALT_NB_TGS or pass --data)')
    d = load_tgs(data, progress=False)
    try: save_packed(d, out, test=a.test, compress=True)   # checks --test against the data's test tiles
    except ValueError as e: sys.exit(f'pack_device_data: {data}: {e}')
    mb = out.stat().st_size / 1e6
    print(f'{out}: {len(d.train)} labeled tiles and {a.test} of {len(d.test)} test tiles, {mb:.1f} MB')
    ign = subprocess.run(['git', 'check-ignore', '-q', str(out)], capture_output=True).returncode == 0
    if not ign: print(f'warning: {out} is not git-ignored: it would travel twice, once with the working tree', file=sys.stderr)
    if mb > a.max_mb: sys.exit(f'pack_device_data: {out} is {mb:.1f} MB, over --max-mb {a.max_mb}: pack fewer test tiles')

if __name__ == '__main__': main()
