"End-to-end tests of the `salt_train` command on a tiny synthetic Kaggle-layout folder (as a subprocess)."
import json, os
import numpy as np, pytest, yaml

from conftest import run_cli, tiny_synth


def run(tmp_path, *args, timeout=300):
    "Run salt_train with `args`; return the CompletedProcess (text output)."
    return run_cli('salt_train', tmp_path, *args, timeout=timeout, SALT_NB_CACHE=tmp_path/'cache',
                   OMP_WAIT_POLICY=os.environ.get('OMP_WAIT_POLICY', 'PASSIVE'))


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A tiny synthetic Kaggle-layout folder: 2 sections of 6x4 tiles, half of them test (24 labeled tiles)."
    return tiny_synth(tmp_path_factory, (6, 4))


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    "The smallest useful config: the tiny U-Net on 64x64 inputs, 1 epoch, 2 folds."
    fn = tmp_path_factory.mktemp('cfg')/'tiny.yaml'
    fn.write_text(yaml.safe_dump(dict(name='pytest', model='tiny', geometry='resize64', bs=4, lr=0.003,
                                      schedule='one_cycle', epochs=1, n_folds=2, folds=None)))
    return fn


def test_help(tmp_path):
    r = run(tmp_path, '--help')
    assert r.returncode == 0, r.stderr
    for opt in ['--out', '--config', '--folds', '--minutes', '--quiet', '--full', '--postprocess', '--resume']:
        assert opt in r.stdout, opt


@pytest.mark.parametrize('cmd', ['salt_train', 'salt_demo'])
def test_no_library_warnings(tmp_path, cmd):
    "A command starts without warnings about library code (fastai's torch.jit.script warns under torch >= 2.10)."
    r = run_cli(cmd, tmp_path, '--help', PYTHONWARNINGS='')   # Python's own defaults, not the tests' 'ignore'
    assert r.returncode == 0, r.stderr
    assert 'Warning' not in r.stderr, r.stderr


def test_kfold_end_to_end(tmp_path, data, config):
    out = tmp_path/'run'
    r = run(tmp_path, data, '--out', out, '--config', config, '--quiet')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'epoch 1/1' in r.stdout and 'OOF' in r.stdout          # one line per epoch, then the summary table
    assert (out/'config.yaml').exists()
    assert yaml.safe_load((out/'config.yaml').read_text())['model'] == 'tiny'
    assert sorted(p.name for p in (out/'checkpoints').glob('*_best.pth')) == ['fold0_best.pth', 'fold1_best.pth']
    assert sorted(p.name for p in (out/'logs').glob('*.csv')) == ['fold0.csv', 'fold1.csv']
    from salt_nb.data import load_tgs
    ids = load_tgs(data, progress=False, cache=False).train.ids
    z = np.load(out/'oof.npz')
    assert sorted(z['ids']) == sorted(ids)                            # every labeled tile exactly once
    assert len(set(z['ids'])) == len(ids)
    assert z['probs'].shape == (len(ids), 101, 101) and z['probs'].dtype == np.float16
    assert sorted(np.unique(z['folds'])) == [0, 1]
    pp = json.loads((out/'postprocess.json').read_text())
    assert 0 < pp['threshold'] < 1 and pp['min_area'] >= 0 and 0 <= pp['score_oof'] <= 1
    m = json.loads((out/'metrics.json').read_text())
    assert [f['fold'] for f in m['folds']] == [0, 1] and m['oof']['n'] == len(ids)


def test_full_and_minutes(tmp_path, data, config):
    out = tmp_path/'full'
    r = run(tmp_path, data, '--out', out, '--config', config, '--full', '--minutes', 0.5, '--quiet')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'budget 0.5 min' in r.stdout
    assert (out/'checkpoints'/'fold0_best.pth').exists() and (out/'postprocess.json').exists()
    m = json.loads((out/'metrics.json').read_text())
    assert m['full'] and not m['postprocess_tuned']


def test_errors(tmp_path, config):
    r = run(tmp_path, tmp_path/'no_such_folder', '--out', tmp_path/'x')
    assert r.returncode != 0
    assert 'no_such_folder' in r.stderr and 'does not exist' in r.stderr and 'Traceback' not in r.stderr
    bad = tmp_path/'bad.yaml'; bad.write_text('modle: tiny\n')
    r = run(tmp_path, tmp_path, '--out', tmp_path/'x', '--config', bad)
    assert r.returncode != 0 and "unknown config key 'modle'" in r.stderr and 'Traceback' not in r.stderr
