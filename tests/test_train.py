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


def test_help_flags(tmp_path):
    r = run(tmp_path, '--help')
    assert r.returncode == 0, r.stderr
    text = ' '.join(r.stdout.split())
    assert 'train again in a folder that holds a run (its old checkpoints and results are removed)' in text
    assert '--trust_code' in text and 'module:callable' in text


def _one_error_line(r, cmd='salt_train'):
    "The command failed with one `cmd: error:` line on stderr and no traceback; that line."
    assert r.returncode != 0, r.stdout[-2000:]
    assert 'Traceback' not in r.stderr, r.stderr[-3000:]
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(f'{cmd}: error: '), r.stderr[-3000:]
    return lines[0]


def _exit_message(**kw) -> str:
    "The message `salt_train`, called in-process as the command calls it, exits with."
    from salt_nb.train import salt_train
    with pytest.raises(SystemExit) as e: salt_train(**kw)
    return str(e.value.code)


@pytest.fixture
def no_data(tmp_path):
    "An existing folder that is no data set: a check that reads it first fails with another message."
    (tmp_path/'not_data').mkdir()
    return tmp_path/'not_data'


@pytest.mark.parametrize('kw, msg', [
    (dict(out='FILE'), '--out'),
    (dict(config='no_such_preset'), "unknown config 'no_such_preset'"),
    (dict(loss='no_such_loss'), 'no_such_loss'),
    (dict(model='no_such_model'), 'no_such_model'),
    (dict(model='os:system'), '--trust_code'),
    (dict(folds='0;1'), '--folds'),
    (dict(folds='0,9'), 'fold(s) [9] out of range'),
    (dict(minutes=0), '--minutes must be > 0'),
    (dict(minutes=-5), '--minutes must be > 0'),
    (dict(groups='MISSING'), 'missing groups file'),
    (dict(groups='BAD'), "need an 'id' column"),
    (dict(full=True, postprocess='MISSING'), 'missing post-processing file'),
    (dict(resume=True, overwrite=True), '--resume'),
])
def test_bad_values_fail_before_the_data(tmp_path, no_data, config, kw, msg):
    (tmp_path/'a_file').write_text('x'); (tmp_path/'bad.csv').write_text('id,foo\na,1\n')
    subst = dict(FILE=tmp_path/'a_file', MISSING=tmp_path/'missing.csv', BAD=tmp_path/'bad.csv')
    kw = {k: str(subst.get(v, v)) if isinstance(v, str) else v for k, v in kw.items()}
    args = {**dict(data=str(no_data), out=str(tmp_path/'run'), config=str(config)), **kw}
    got = _exit_message(**args)
    assert got.startswith('salt_train: error: ') and msg in got and '\n' not in got, got
    assert 'train.csv' not in got                     # the data folder was not read
    assert not (tmp_path/'run').exists()              # a refused start leaves nothing behind


def test_bad_value_as_a_command(tmp_path, no_data, config):
    "As a command: one line, no traceback, within seconds (the startup of Python and torch included)."
    import time
    t = time.time()
    r = run(tmp_path, no_data, '--out', tmp_path/'run', '--config', config, '--minutes', -1)
    line = _one_error_line(r)
    assert '--minutes' in line and time.time() - t < 60
    (tmp_path/'a_file').write_text('x')
    line = _one_error_line(run(tmp_path, no_data, '--out', tmp_path/'a_file'/'run', '--config', config))
    assert 'a_file' in line


def _killed_in_prediction(tmp_path, *args):
    "Run salt_train with its out-of-fold prediction replaced by a hard kill of the process (as `kill -9` would stop it)."
    import subprocess, sys
    from conftest import cli_env
    script = tmp_path/'killed_train.py'
    script.write_text('import os\nimport salt_nb.train as T\n'
                      'T.predict_probs = lambda *a, **k: os._exit(137)\n'
                      'T.salt_train()\n')
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=cli_env(SALT_NB_CACHE=tmp_path/'cache', OMP_WAIT_POLICY='PASSIVE'))


def test_run_folder_lifecycle(tmp_path, data, config):
    "A failed start, a kill after training, a refused rerun, a resume that trains nothing, a refused retrain, --overwrite."
    from salt_nb.runs import RunDir
    out = tmp_path/'run'
    rd = RunDir(out)
    line = _one_error_line(run(tmp_path, data, '--out', out, '--config', config, '--loss', 'no_such_loss'))
    assert 'no_such_loss' in line
    assert rd.status() == 'new'                       # nothing that blocks the corrected command
    r = _killed_in_prediction(tmp_path, data, '--out', out, '--config', config, '--folds', 0, '--quiet')
    assert r.returncode == 137, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'fold 0 epoch 1/1' in r.stdout
    assert rd.state(0).exists() and not rd.oof.exists()           # trained, killed before the OOF was saved
    line = _one_error_line(run(tmp_path, data, '--out', out, '--config', config, '--folds', 0, '--quiet'))
    assert 'unfinished run' in line and '--resume' in line and '--overwrite' in line
    r = run(tmp_path, data, '--out', out, '--resume', '--quiet')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'fold 0 epoch' not in r.stdout, r.stdout              # resumed at its last epoch: nothing trained again
    m = json.loads(rd.metrics.read_text())
    assert m['oof'] is not None and [f['fold'] for f in m['folds']] == [0] and rd.postprocess.exists()
    assert not rd.state(0).exists()
    line = _one_error_line(run(tmp_path, data, '--out', out, '--config', config, '--folds', 0, '--quiet'))
    assert 'finished run' in line and '--overwrite' in line
    before = rd.best(0).stat().st_mtime_ns
    r = run(tmp_path, data, '--out', out, '--config', config, '--folds', 0, '--overwrite')   # with progress bars
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'OOF' in r.stdout and rd.best(0).stat().st_mtime_ns != before
    assert json.loads(rd.metrics.read_text())['oof'] is not None


def test_nonfinite_loss_stops_the_run(tmp_path, data, config):
    out = tmp_path/'run'
    r = run(tmp_path, data, '--out', out, '--config', config, '--folds', 0, '--lr', 1e30, '--quiet')
    line = _one_error_line(r)
    assert 'training loss became' in line and '--lr' in line, line
    assert not (out/'metrics.json').exists() and not (out/'postprocess.json').exists() and not (out/'oof.npz').exists()


def test_os_errors_are_one_line(tmp_path, monkeypatch):
    "An operating-system refusal on a user's path (no permission, a folder where a file was expected) is one line naming it."
    import salt_nb.train as T
    def refused(**kw): raise PermissionError(13, 'Permission denied', str(tmp_path/'run'/'config.yaml'))
    monkeypatch.setattr(T, 'train_run', refused)
    got = _exit_message(data=str(tmp_path), out=str(tmp_path/'run'))
    assert got == f"salt_train: error: {tmp_path/'run'/'config.yaml'}: permission denied"
