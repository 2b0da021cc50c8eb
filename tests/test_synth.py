"The `salt_synth` command writes a Kaggle-layout folder that the data layer accepts."
from pathlib import Path
from conftest import run_cli
import pandas as pd, pytest
from salt_nb.data import load_tgs

def _cli(tmp_path, *args): return run_cli('salt_synth', tmp_path, *args, timeout=120)

def test_salt_synth_writes_loadable_folder(tmp_path):
    r = _cli(tmp_path, tmp_path/'s', '--n_sections', 1, '--nx', 4, '--ny', 3, '--seed', 3)
    assert r.returncode == 0, r.stderr
    assert 'wrote 12 tiles' in r.stdout
    d = load_tgs(tmp_path/'s', cache=False, progress=False)
    assert len(d.train) + len(d.test) == 12
    pos = pd.read_csv(tmp_path/'s'/'positions.csv')
    assert set(pos.id) == set(d.train.ids) | set(d.test.ids)
    truth = pd.read_csv(tmp_path/'s'/'test_truth.csv', keep_default_na=False)
    assert set(truth.id) == set(d.test.ids)

def test_salt_synth_refuses_foreign_folder(tmp_path):
    (tmp_path/'mine.txt').write_text('keep me')
    r = _cli(tmp_path, tmp_path, '--n_sections', 1, '--nx', 2, '--ny', 2)
    assert r.returncode != 0 and (tmp_path/'mine.txt').exists()

def test_salt_synth_help(tmp_path):
    r = _cli(tmp_path, '--help')
    assert r.returncode == 0 and '--n_sections' in r.stdout

def _snap(d): return {str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob('*')) if f.is_file()}

def test_interrupted_rewrite_keeps_old_folder(tmp_path, monkeypatch):
    "A run stopped half-way through its PNGs leaves the previous folder byte-identical and nothing beside it."
    import salt_nb.synth as synth
    old = synth.make_synthetic(tmp_path/'s', n_sections=1, section_tiles=(3, 2), seed=1, progress=False)
    before, real, calls = _snap(old), synth._save_png, []
    def half_way(fn, a):
        calls.append(fn)
        if len(calls) > 2: raise RuntimeError('stopped half-way')
        real(fn, a)
    monkeypatch.setattr(synth, '_save_png', half_way)
    with pytest.raises(RuntimeError, match='half-way'):
        synth.make_synthetic(old, n_sections=1, section_tiles=(3, 2), seed=2, progress=False)
    assert _snap(old) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['s']

def test_every_file_goes_through_atomic_write(tmp_path, monkeypatch):
    import salt_nb.synth as synth
    from salt_nb.files import atomic_write
    seen = []
    monkeypatch.setattr(synth, 'atomic_write', lambda path, write: seen.append(path) or atomic_write(path, write))
    out = synth.make_synthetic(tmp_path/'s', n_sections=1, section_tiles=(2, 2), progress=False)
    written = {f.relative_to(out) for f in out.rglob('*') if f.is_file()}
    assert written and written == {Path(p).relative_to(tmp_path/'.s.partial') for p in seen}

def test_rewrite_replaces_every_tile(tmp_path):
    "An existing synthetic folder is replaced as a whole: no tile of the older run survives."
    _cli(tmp_path, tmp_path/'s', '--n_sections', 1, '--nx', 4, '--ny', 3)
    r = _cli(tmp_path, tmp_path/'s', '--n_sections', 1, '--nx', 2, '--ny', 2, '--seed', 5)
    assert r.returncode == 0, r.stderr
    d = load_tgs(tmp_path/'s', cache=False, progress=False)
    assert len(d.train) + len(d.test) == 4 and len(list((tmp_path/'s').rglob('*.png'))) == 4 + len(d.train)

@pytest.mark.parametrize('args, msg', [(['--nx', 'abc'], "argument --nx: invalid int value: 'abc'"),
                                       (['--noise', '-1'], 'noise=-1.0: must be a number >= 0'),
                                       (['--seed', '-3'], 'seed=-3: must be at least 0'),
                                       (['--test_frac', '1'], 'test_frac=1.0: must be in [0, 1)')])
def test_cli_bad_options(tmp_path, args, msg):
    r = _cli(tmp_path, tmp_path/'s', *args)
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] == f'salt_synth: error: {msg}'
    assert not (tmp_path/'s').exists()

def test_cli_out_dir_is_a_file(tmp_path):
    (tmp_path/'f.txt').write_text('keep me')
    r = _cli(tmp_path, tmp_path/'f.txt', '--n_sections', 1, '--nx', 2, '--ny', 2)
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    assert r.stderr.strip().splitlines() == [f'salt_synth: error: {tmp_path/"f.txt"} is a file, not a folder']
    assert (tmp_path/'f.txt').read_text() == 'keep me'
