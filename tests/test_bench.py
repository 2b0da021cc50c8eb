"The product benchmarks (bench/time_to_score.py, bench/step_phases.py) and the remote-GPU scripts (gpu_remote/) end to end on a tiny synthetic folder, as subprocesses."
import json, os, re, subprocess, sys
import numpy as np, pytest, yaml

from conftest import REPO, cli_env, tiny_synth


@pytest.fixture(scope='module')
def data(tmp_path_factory): return tiny_synth(tmp_path_factory, (6, 4))   # 24 labeled tiles


def tts(tmp_path, *args, **config):
    "bench/time_to_score.py with a tiny one-epoch config (`config`: keys changed)."
    cfg = tmp_path/'tiny.yaml'
    cfg.write_text(yaml.safe_dump({**dict(name='pytest', model='tiny', geometry='resize64', bs=4, lr=0.003,
                                          schedule='one_cycle', epochs=1), **config}))
    return subprocess.run([sys.executable, str(REPO/'bench'/'time_to_score.py'), '--config', cfg, *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env=cli_env(SALT_NB_CACHE=tmp_path/'cache', OMP_WAIT_POLICY=os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')))


def test_time_to_score_learning_curve(tmp_path, data):
    full = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'all')
    assert full.returncode == 0, full.stdout[-2000:] + full.stderr[-2000:]
    part = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'part', '--drop-folds', 1)
    assert part.returncode == 0, part.stdout[-2000:] + part.stderr[-2000:]
    assert 'folds [1] left out' in part.stdout and 'final model' in part.stdout
    a, b = (json.loads((tmp_path/d/'time_to_score.json').read_text()) for d in ('all', 'part'))
    assert b['drop_folds'] == [1] and a['drop_folds'] == []
    assert b['n_valid'] == a['n_valid'] and 0 < b['n_train'] < a['n_train']   # same held-out tiles, fewer to train on
    assert 0 <= b['final']['score_tuned'] <= 1 and 0 <= b['final']['score_cv_tuned'] <= 1
    assert 'cross-validated tuned' in part.stdout
    seed = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'seed', '--set', 'seed=7')
    assert seed.returncode == 0, seed.stdout[-2000:] + seed.stderr[-2000:]
    c = json.loads((tmp_path/'seed'/'time_to_score.json').read_text())
    ids = lambda d: np.load(tmp_path/d/'oof.npz')['ids'].tolist()
    assert (c['config']['seed'], a['config']['seed']) == (7, 42) and ids('seed') == ids('all')   # another seed, same split


@pytest.mark.parametrize('bad', ['0', 'one'])
def test_time_to_score_bad_drop(tmp_path, data, bad):
    r = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'x', '--drop-folds', bad)
    assert r.returncode != 0 and f"folds 1-4, got '{bad}'" in r.stderr


def test_device_call(tmp_path, data):
    "gpu_remote/pack_device_data.py packs a folder with a few test tiles; gpu_remote/device_call.sh trains and predicts from it."
    env = cli_env(SALT_NB_CACHE=tmp_path/'cache', OMP_WAIT_POLICY='PASSIVE', PYTHON=sys.executable,
                  OUT=tmp_path/'out', RUN=tmp_path/'run')
    pk = subprocess.run([sys.executable, str(REPO/'gpu_remote'/'pack_device_data.py'), str(tmp_path/'d.npz'), '--data', data, '--test', '5'],
                        capture_output=True, text=True, timeout=300, env=env)
    assert pk.returncode == 0 and '24 labeled tiles and 5 of' in pk.stdout, pk.stdout + pk.stderr[-2000:]
    (tmp_path/'dir.npz').mkdir()                           # an output path that is a folder: one line, before loading
    pd_ = subprocess.run([sys.executable, str(REPO/'gpu_remote'/'pack_device_data.py'), str(tmp_path/'dir.npz'), '--data', data],
                         capture_output=True, text=True, timeout=300, env=env)
    assert pd_.returncode != 0 and 'is a folder' in pd_.stderr and 'Traceback' not in pd_.stderr, pd_.stderr[-2000:]
    cfg = tmp_path/'tiny.yaml'
    cfg.write_text(yaml.safe_dump(dict(name='pytest', model='tiny', geometry='resize64', bs=4, schedule='one_cycle', epochs=2, folds=[0])))
    r = subprocess.run(['bash', str(REPO/'gpu_remote'/'device_call.sh'), '0.3', str(cfg), str(tmp_path/'d.npz')], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path/'out'
    for f in ('metrics.json', 'postprocess.json', 'oof.npz', 'submission.csv', 'test_probs.npz', 'call.log', 'epochs.csv'):
        assert (out/f).exists(), f
    back = [f for f in out.rglob('*') if f.is_file()]      # what a job runner returns: 8 files at most, plain names
    assert len(back) <= 8 and all(re.fullmatch(r'[A-Za-z0-9._-]+', f.name) for f in back), back
    assert 'train_loss' in (out/'epochs.csv').read_text().splitlines()[0]
    log = (out/'call.log').read_text()                      # salt_train's and salt_predict's output, in order
    assert log.index('budget 0.3 min') < log.index('submission.csv: 5 tiles')
    sub = np.loadtxt(out/'submission.csv', dtype=str, delimiter=',', skiprows=1, usecols=0)
    with np.load(tmp_path/'d.npz') as z: test_ids = z['test_ids']
    assert sorted(sub) == sorted(test_ids) and len(test_ids) == 5
    with np.load(out/'test_probs.npz') as z: assert z['probs'].dtype == np.uint8 and len(z['ids']) == 5
    assert 'device_call: train' in r.stdout and 0 <= json.loads((out/'metrics.json').read_text())['oof']['score_cv_tuned'] <= 1
    bad = subprocess.run(['bash', str(REPO/'gpu_remote'/'device_call.sh'), '1', str(cfg), str(tmp_path/'missing.npz')], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and 'no data file' in bad.stderr


def test_step_phases(tmp_path, data):
    "bench/step_phases.py times the phases of training steps of two configs in turn, overrides applied; bad specs fail clearly."
    run = lambda *a: subprocess.run([sys.executable, str(REPO/'bench'/'step_phases.py'), '--data', data, *map(str, a)],
                                    capture_output=True, text=True, timeout=300, env=cli_env(SALT_NB_CACHE=tmp_path/'cache'))
    r = run('demo', 'demo:bs=4,channels_last=off', '--steps', 5, '--reps', 2)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = [l.split('|')[1:-1] for l in r.stdout.splitlines() if l.startswith('| demo')]
    assert [(c.strip(), k.strip()) for c, k, *_ in rows] == [('demo', '1'), ('demo:bs=4,channels_last=off', '1'),
                                                             ('demo', '2'), ('demo:bs=4,channels_last=off', '2')]
    for row in rows:
        data_ms, fwd, loss, bwd, step, total, rate = map(float, row[2:])
        assert min(fwd, loss, bwd, step) > 0 and data_ms + fwd + loss + bwd + step <= total * 1.5 and rate > 0
    bad = run('demo:bss=4')
    assert bad.returncode != 0 and "unknown config key 'bss'" in bad.stderr
    kw = run('demo:bs=4,model_kwargs={scse: false, n_dilated: 0}', '--steps', 4, '--reps', 1)   # a mapping's commas
    assert kw.returncode == 0 and '| demo:bs=4,model_kwargs={scse: false, n_dilated: 0} | 1 |' in kw.stdout, kw.stderr[-2000:]
