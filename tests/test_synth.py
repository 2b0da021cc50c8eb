"The `salt_synth` command writes a Kaggle-layout folder that the data layer accepts."
from conftest import run_cli
import pandas as pd
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
