"""Pack the TGS data for the GPU machine: one compressed `.npz` with every labeled tile and the first N test tiles.

    python bench/pack_device_data.py .cache/tgs_device.npz [--data ../shared/tgs] [--test 2000] [--max-mb 52]

The device tool carries at most 64 MiB in all: the working tree (about 1.3 MB), `.whl/` (about 6 MB, from
`../shared/device/wheels.sh`) and this file. Compressed, the 3000 labeled tiles take about 24 MB (the seismic images
hardly compress, the masks do) and each test tile about 7.7 KB, so about 3500 of the 19000 test tiles would fit beside
them. The default is 2000 (39 MB), because the tool also returns at most 16 MiB a file: the compressed uint8
probabilities of 2000 tiles stay under that even for a barely trained model (11 MB measured after one epoch). The
packed test tiles are the file's sample submission. `bench/device_call.sh` reads the file. The output must
be a git-ignored path (`.cache/` is), or the device tool would carry it twice.
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
    out = Path(a.out)
    if out.suffix != '.npz': sys.exit(f'pack_device_data: {out} must end in .npz')
    data = a.data or find_tgs()
    if data is None: sys.exit('pack_device_data: no TGS data found (set $SALT_NB_TGS or pass --data)')
    d = load_tgs(data, progress=False)
    try: save_packed(d, out, test=a.test, compress=True)   # checks --test against the data's test tiles
    except ValueError as e: sys.exit(f'pack_device_data: {data}: {e}')
    mb = out.stat().st_size / 1e6
    print(f'{out}: {len(d.train)} labeled tiles and {a.test} of {len(d.test)} test tiles, {mb:.1f} MB')
    ign = subprocess.run(['git', 'check-ignore', '-q', str(out)], capture_output=True).returncode == 0
    if not ign: print(f'warning: {out} is not git-ignored: the device tool would carry it with the working tree', file=sys.stderr)
    if mb > a.max_mb: sys.exit(f'pack_device_data: {out} is {mb:.1f} MB, over --max-mb {a.max_mb}: pack fewer test tiles')

if __name__ == '__main__': main()
