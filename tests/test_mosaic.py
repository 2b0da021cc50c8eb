"Tests of mosaic reconstruction: accuracy on synthetic sections, the `salt_mosaic` command, folds, post-processing."
import os
import numpy as np, pandas as pd, pytest
from salt_nb.data import TILE, TileSet, load_tgs, find_tgs
from salt_nb.mosaic import reconstruct, all_tiles, adjacency_scores, mosaic_folds, propagate_vertical, adjacent_pairs

from conftest import run_cli


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    "Five synthetic sections of 10x7 tiles (default noise), half test, loaded like real data; and the true positions."
    from salt_nb.synth import make_synthetic
    tmp = tmp_path_factory.mktemp('syn')
    os.environ['SALT_NB_CACHE'] = str(tmp/'cache')
    p = make_synthetic(tmp/'tgs', n_sections=5, section_tiles=(10, 7), test_frac=0.5, seed=2, progress=False)
    return p, load_tgs(p, progress=False), pd.read_csv(p/'positions.csv', dtype={'id': str})


def test_synthetic_precision_recall(synthetic):
    p, data, pos = synthetic
    tiles = all_tiles(data)
    rec = reconstruct(tiles)
    sc = adjacency_scores(rec, pos, exclude=tiles.ids[tiles.blank])
    assert sc['precision'] >= 0.995, sc
    assert sc['recall'] >= 0.95, sc
    assert rec.mosaic_id.value_counts().is_monotonic_decreasing
    assert not set(rec.id) & set(tiles.ids[tiles.blank])  # blank tiles are never placed


def test_free_edge_rounds_add_without_errors(synthetic):
    "The ratio test repeated among free edges finds at least as many true pairs and no more false ones."
    p, data, pos = synthetic
    tiles = all_tiles(data); ex = tiles.ids[tiles.blank]
    base, full = reconstruct(tiles, free_passes=0), reconstruct(tiles)
    s0, s1 = adjacency_scores(base, pos, exclude=ex), adjacency_scores(full, pos, exclude=ex)
    assert s1['tp'] >= s0['tp'] and s1['n_pred'] - s1['tp'] <= s0['n_pred'] - s0['tp'], (s0, s1)


def test_loose_round_confirmed_by_loops(synthetic):
    "A lax loose round (any ratio, distance up to 0.7) adds true seams only: the ones no loop confirms are cut again."
    p, data, pos = synthetic
    tiles = all_tiles(data); ex = tiles.ids[tiles.blank]
    s0 = adjacency_scores(reconstruct(tiles, loose_ratio=None, check=False), pos, exclude=ex)
    s1 = adjacency_scores(reconstruct(tiles, loose_ratio=1.01, loose_dist=0.7), pos, exclude=ex)
    assert s1['precision'] >= 0.995 and s1['tp'] > s0['tp'], (s0, s1)

def test_cli_writes_csv(synthetic, tmp_path):
    p, data, pos = synthetic
    out = tmp_path/'mosaics.csv'
    r = run_cli('salt_mosaic', tmp_path, p, '--out', out)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out, dtype={'id': str})
    assert list(df.columns) == ['id', 'mosaic_id', 'x', 'y']
    assert 'tiles placed:' in r.stdout and 'mosaics:' in r.stdout and 'largest:' in r.stdout and 'time:' in r.stdout
    assert len(df) > 0.9*len(pos) and df.id.is_unique
    assert not df.duplicated(['mosaic_id', 'x', 'y']).any()


def test_cli_missing_folder(tmp_path):
    r = run_cli('salt_mosaic', tmp_path, tmp_path/'nowhere')
    assert r.returncode != 0 and 'salt_mosaic: error: data folder' in r.stderr and 'nowhere' in r.stderr
    assert 'Traceback' not in r.stderr


def test_cli_interrupted_write_keeps_old_csv(synthetic, tmp_path, monkeypatch):
    "A write stopped half-way through the CSV leaves the previous file byte-identical, and no temporary file."
    from salt_nb.mosaic import salt_mosaic
    p, data, pos = synthetic
    out = tmp_path/'mosaics.csv'; out.write_bytes(b'id,mosaic_id,x,y\nold,0,0,0\n')
    def half_way(self, buf=None, *args, **kwargs):
        part = b'id,mosaic_id,x,y\n'
        if hasattr(buf, 'write'): buf.write(part if 'b' in getattr(buf, 'mode', 'b') else part.decode())
        else: open(buf, 'wb').write(part)
        raise RuntimeError('stopped half-way')
    monkeypatch.setattr(pd.DataFrame, 'to_csv', half_way)
    with pytest.raises(RuntimeError, match='half-way'): salt_mosaic(str(p), out=str(out))
    assert out.read_bytes() == b'id,mosaic_id,x,y\nold,0,0,0\n'
    assert [f.name for f in tmp_path.iterdir()] == ['mosaics.csv']


@pytest.mark.parametrize('args, msg', [(['--out', '{tmp}'], '--out {tmp}: is a folder'),
                                       (['--out', '{tmp}/mosaics.csv', '--max_ratio', 'abc'], "argument --max_ratio: invalid float value: 'abc'"),
                                       (['--out', '{tmp}/mosaics.csv', '--max_ratio', '-1'], '--max_ratio -1.0: must be a number > 0'),
                                       (['--out', '{tmp}/mosaics.csv', '--seed', '-2'], '--seed -2: must be >= 0')])
def test_cli_bad_options(synthetic, tmp_path, args, msg):
    "Bad options fail at once with one line naming the flag, before the tiles are loaded."
    r = run_cli('salt_mosaic', tmp_path, synthetic[0], *[a.format(tmp=tmp_path) for a in args], timeout=60)
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f'salt_mosaic: error: {msg.format(tmp=tmp_path)}'), r.stderr
    assert not (tmp_path/'mosaics.csv').exists()

def test_folds_keep_mosaics_together(synthetic):
    p, data, pos = synthetic
    rec = pos.rename(columns={'section': 'mosaic_id'})
    f = mosaic_folds(data.train.ids, rec, n_folds=3, seed=0)
    fm = pd.Series(f, index=data.train.ids)
    for _, g in rec[rec.id.isin(data.train.ids)].groupby('mosaic_id'): assert fm[g.id].nunique() == 1


def test_propagate_vertical_on_synthetic_mosaic():
    vm = np.zeros((TILE, TILE), bool); vm[:, 30:] = True
    train = TileSet(['A'], np.zeros((1, TILE, TILE), np.uint8), vm[None])
    mos = pd.DataFrame(dict(id=['A', 'b', 'c', 'd'], mosaic_id=0, x=[0, 0, 0, 1], y=[0, 1, 2, 1]))
    preds = np.zeros((3, TILE, TILE), np.float32)
    out = propagate_vertical(preds, ['b', 'c', 'd'], train, mos)
    assert (out[0] == vm).all() and (out[1] == vm).all() and not out[2].any() and not preds.any()


@pytest.mark.skipif(find_tgs() is None, reason='no ../shared/tgs (real TGS data) on this machine')
@pytest.mark.skipif(not os.environ.get('SALT_NB_SLOW'), reason='set SALT_NB_SLOW=1 to reconstruct the 22000 real tiles (~15-60 s)')
def test_real_vertical_seams_continue_masks():
    d = load_tgs(find_tgs(), progress=False)
    rec = reconstruct(all_tiles(d))
    m = dict(zip(d.train.ids, d.train.masks))
    agree = [(m[a][-1] == m[b][0]).mean() >= 0.9 for a, b, k in adjacent_pairs(rec) if k == 1 and a in m and b in m]
    assert len(rec) > 5000 and np.mean(agree) > 0.94, (len(rec), np.mean(agree))
